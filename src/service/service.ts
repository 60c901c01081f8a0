/**
 * Service mode (`loft` with no action flag): upload whatever this machine adds to its store,
 * with nothing lost across failures and restarts.
 *
 * Intake -> durable queue -> worker -> push:
 * - the store watcher (lock-file removals, confirmed valid by the daemon),
 * - the post-build hook's inbox (files written by `loft --post-build-hook`),
 * - reconciliation (every valid path never seen before; at start and periodically),
 * - the initial scan (once, when `scan_on_startup` is set; or `--force-scan`),
 * all record paths in the queue (SQLite, next to the index) before anything is uploaded;
 * the worker pushes them in batches and deletes a row only when its closure is cached.
 *
 * Each intake is a source (src/service/*-source.ts) that owns its state behind start and
 * stop; this module only orders them. Start: nix-cache-info, claims of a crashed run
 * released, populate (if configured), worker, then the inbox, the watcher, the scan (when
 * due) and reconciliation (at start unless the scan ran), then scheduled pruning.
 * Stop (drain signal): intake stops, watcher events already seen are queued, the batch in
 * flight finishes its NARs (the rest stays queued), pruning stops between batches.
 * Abort (second signal): uploads in flight are aborted; nothing half-written is published.
 */
import { statSync } from 'node:fs';
import { formatBytes } from '../util/format.js';
import type { Logger } from '../util/log.js';
import type { LoftConfig } from '../config/index.js';
import { UploadQueue } from '../index/queue.js';
import { ensureCacheInfo } from '../upload/cache-info.js';
import { inboxDirFor } from '../watch/inbox.js';
import { SeenSet } from '../watch/reconcile.js';
import { pushContextOf, pushOptionsOf, type AppContext } from './context.js';
import { StoreDirMissingError } from './errors.js';
import { populateIndex } from './populate.js';
import { afterPushOf } from './after-push.js';
import { PruneScheduler, type PruneRunner } from './prune-schedule.js';
import { InboxSource } from './inbox-source.js';
import { Intake, type IntakeSource } from './intake.js';
import { ReconcileSource } from './reconcile-source.js';
import { ScanSource } from './scan-source.js';
import { WatchSource } from './watch-source.js';
import type { PushEvent } from '../upload/events.js';
import { STATE, recordPrune } from './state-keys.js';
import { UploadWorker, emptyWorkerStats, type WorkerStats } from './worker.js';

export interface ServiceTiming {
  /** Reconciliation against QueryAllValidPaths. */
  reconcileMs: number;
  /** Inbox read even without a watch event. */
  inboxPollMs: number;
  /** Summary line at info level. */
  heartbeatMs: number;
  /** Store watcher debounce. */
  watchDebounceMs: number;
  /** Re-establish a broken store watch after this long. */
  watchRestartMs: number;
}

export const DEFAULT_TIMING: ServiceTiming = {
  reconcileMs: 10 * 60_000,
  inboxPollMs: 30_000,
  heartbeatMs: 10 * 60_000,
  watchDebounceMs: 100,
  watchRestartMs: 5_000,
};

export interface ServiceOptions {
  /** `--force-scan`: scan now, asking the bucket about every path. */
  forceScan: boolean;
  /** First SIGTERM/SIGINT: stop intake, finish what is in flight. */
  drain: AbortSignal;
  /** Second signal: abort in-flight uploads. */
  signal: AbortSignal;
  /** Scheduled pruning (when `prune_enabled`). */
  pruneRunner?: PruneRunner;
  /** Every push event of the service's uploads (metrics). */
  onPushEvent?: (ev: PushEvent) => void;
  timing?: Partial<ServiceTiming>;
}

export interface ServiceOutcome {
  aborted: boolean;
  stats: WorkerStats;
}

export async function runService(ctx: AppContext, opts: ServiceOptions): Promise<ServiceOutcome> {
  return new Service(ctx, opts).run();
}

class Service {
  private readonly config: LoftConfig;
  private readonly logger: Logger;
  private readonly timing: ServiceTiming;
  private readonly queue: UploadQueue;
  private worker: UploadWorker | undefined;
  /** Started sources, in start order; stopped in reverse. */
  private readonly running: IntakeSource[] = [];
  private heartbeat: NodeJS.Timeout | undefined;
  /** Internal drain: the external one, or a failed start. */
  private readonly stop = new AbortController();
  /** An error that ended the service from inside (the worker's queue failing). */
  private fatal: unknown;
  private readonly startedAt = Date.now();
  private readonly storeDirOnDisk: string;

  constructor(
    private readonly ctx: AppContext,
    private readonly opts: ServiceOptions,
  ) {
    this.config = ctx.config;
    this.logger = ctx.logger;
    this.timing = { ...DEFAULT_TIMING, ...opts.timing };
    this.queue = new UploadQueue(ctx.index);
    this.storeDirOnDisk = this.config.realStoreDir ?? ctx.store.storeDir;
  }

  async run(): Promise<ServiceOutcome> {
    const { drain, signal } = this.opts;
    const onDrain = () => this.stop.abort();
    if (drain.aborted) this.stop.abort();
    else drain.addEventListener('abort', onDrain, { once: true });
    let workerDone: Promise<void> | undefined;
    let pruner: PruneScheduler | undefined;
    try {
      await this.prepare();
      const seen = new SeenSet(this.queue);
      const pushOptions = pushOptionsOf(this.config);
      const intake = new Intake(
        this.queue,
        seen,
        this.logger,
        (lane) => this.worker?.wake(lane),
        pushOptions.exclude,
      );
      const sources = this.sources(intake);
      const worker = new UploadWorker({
        queue: this.queue,
        pushContext: pushContextOf(this.ctx),
        validPaths: (p) => this.ctx.store.validPaths(p),
        pushOptions,
        maxAttempts: this.config.queue.maxAttempts,
        retryBaseMs: this.config.queue.retrySeconds * 1000,
        logger: this.logger,
        afterBatch: () => sources.scan.checkDone(),
        afterPush: afterPushOf(this.ctx),
        onPushEvent: this.opts.onPushEvent,
      });
      this.worker = worker;
      workerDone = worker.run(this.stop.signal, signal).catch((e: unknown) => {
        // The queue itself failed (e.g. the index became unwritable): stop the service
        // with that error, so it exits non-zero and systemd restarts it.
        this.fatal ??= e;
        this.stop.abort();
      });
      // Files the hook left while the service was down are queued before anything else;
      // then the watcher, so nothing built from now on is missed while the store is read.
      for (const s of [sources.inbox, sources.watch, sources.scan, sources.reconcile]) {
        this.running.push(s);
        await s.start();
      }
      this.heartbeat = setInterval(() => this.beat(worker), this.timing.heartbeatMs);
      if (this.config.prune.enabled && this.opts.pruneRunner) {
        pruner = new PruneScheduler({
          schedule: this.config.prune.schedule,
          run: this.opts.pruneRunner,
          lastRun: () => {
            const v = this.ctx.index.getState(STATE.lastPrune);
            return v === undefined ? undefined : new Date(v);
          },
          recordRun: (at, summary) => recordPrune(this.ctx.index, at, summary),
          logger: this.logger,
        });
        if (!this.stop.signal.aborted) pruner.start();
      }
      if (!this.stop.signal.aborted) {
        const c = this.queue.counts();
        this.logger.info(
          `service ready: watching ${this.storeDirOnDisk}, ${c.pending} paths queued, ${c.parked} parked, ` +
            (this.ctx.signingKey ? 'uploads signed' : 'uploads NOT signed (no signing_key_path)'),
          {
            event: 'ready',
            signed: this.ctx.signingKey !== undefined,
            storeDir: this.storeDirOnDisk,
            queued: c.pending,
            parked: c.parked,
            seen: seen.size,
          },
        );
        await new Promise<void>((resolve) => {
          if (this.stop.signal.aborted) return resolve();
          this.stop.signal.addEventListener('abort', () => resolve(), { once: true });
        });
      }
    } finally {
      drain.removeEventListener('abort', onDrain);
      this.stop.abort();
      await this.shutdown(pruner, workerDone);
    }
    if (this.fatal !== undefined) throw this.fatal;
    return { aborted: signal.aborted, stats: this.worker?.stats ?? emptyWorkerStats() };
  }

  /** The four intake sources; none shares state with another. */
  private sources(intake: Intake) {
    const { ctx, config, logger, timing } = this;
    const scan = new ScanSource({
      intake,
      store: ctx.store,
      index: ctx.index,
      onStartup: config.scanOnStartup,
      force: this.opts.forceScan,
      skipSignedByKeys: config.skipSignedByKeys,
      logger,
      signal: this.stop.signal,
    });
    const reconcile = new ReconcileSource({
      intake,
      store: ctx.store,
      index: ctx.index,
      everyMs: timing.reconcileMs,
      // At start the initial scan, when it runs, looks at the whole store instead.
      atStart: () => !scan.due,
      logger,
    });
    const watch = new WatchSource({
      intake,
      store: ctx.store,
      dirOnDisk: this.storeDirOnDisk,
      debounceMs: timing.watchDebounceMs,
      restartMs: timing.watchRestartMs,
      logger,
      afterBlind: () => reconcile.runSoon(),
    });
    const inbox = new InboxSource({
      intake,
      dir: inboxDirFor(config.localCachePath),
      storeDir: ctx.store.storeDir,
      pollMs: timing.inboxPollMs,
      logger,
    });
    return { scan, reconcile, watch, inbox };
  }

  /** Before any intake: the store dir, the cache's nix-cache-info, stale claims, populate. */
  private async prepare(): Promise<void> {
    const dir = this.storeDirOnDisk;
    let isDir = false;
    try {
      isDir = statSync(dir).isDirectory();
    } catch (e) {
      throw new StoreDirMissingError(dir, (e as Error).message);
    }
    if (!isDir) throw new StoreDirMissingError(dir, 'not a directory');

    if ((await ensureCacheInfo(this.ctx.blobs, this.ctx.store.storeDir)) === 'written') {
      this.logger.info(`wrote nix-cache-info to ${this.ctx.blobs.description}`, {
        event: 'cache-info-written',
      });
    }
    const released = this.queue.releaseAllClaims();
    if (released > 0) {
      this.logger.info(
        `${released} queued paths were in progress when Loft last stopped; they will be uploaded again`,
        { event: 'claims-released', paths: released },
      );
    }
    if (this.config.populateCacheOnStartup) {
      this.logger.info(`populating the local index from ${this.ctx.blobs.description}`);
      const r = await populateIndex(this.ctx.blobs, this.ctx.index, { signal: this.stop.signal });
      this.logger.info(`local index populated: ${r.narInfos} narinfos in the cache`, {
        event: 'populated',
        narInfos: r.narInfos,
        ms: r.ms,
      });
    }
  }

  private beat(worker: UploadWorker): void {
    const s = worker.stats;
    const c = this.queue.counts();
    this.logger.info(
      `since start: ${s.uploadedPaths} paths uploaded (${formatBytes(s.fileBytes)} stored); queue: ${c.pending} pending, ${c.retrying} retrying, ${c.parked} parked`,
      {
        event: 'heartbeat',
        uploaded: s.uploadedPaths,
        fileBytes: s.fileBytes,
        pending: c.pending,
        retrying: c.retrying,
        parked: c.parked,
        uptimeS: Math.round((Date.now() - this.startedAt) / 1000),
      },
    );
  }

  /** Intake stops first (what it found is queued), then pruning, then the worker drains. */
  private async shutdown(
    pruner: PruneScheduler | undefined,
    workerDone: Promise<void> | undefined,
  ): Promise<void> {
    const worker = this.worker;
    if (worker && !this.opts.signal.aborted && this.fatal === undefined) {
      this.logger.info('stopping: no new uploads; finishing those in flight', {
        event: 'stopping',
      });
    }
    clearInterval(this.heartbeat);
    await Promise.allSettled(this.running.reverse().map((s) => s.stop()));
    await pruner?.stop();
    await workerDone;
    if (!worker) return;
    const s = worker.stats;
    this.logger.info(
      `${this.opts.signal.aborted ? 'aborted' : 'stopped'}: ${s.uploadedPaths} paths uploaded since start`,
      { event: 'stopped', aborted: this.opts.signal.aborted, uploaded: s.uploadedPaths },
    );
  }
}
