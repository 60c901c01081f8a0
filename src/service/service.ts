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
 * Start: nix-cache-info, claims of a crashed run released, populate (if configured),
 * worker, inbox, watcher, then scan or reconciliation, then timers and scheduled pruning.
 * Stop (drain signal): intake stops, watcher events already seen are queued, the batch in
 * flight finishes its NARs (the rest stays queued), pruning stops between batches.
 * Abort (second signal): uploads in flight are aborted; nothing half-written is published.
 */
import { mkdirSync, statSync } from 'node:fs';
import { formatBytes } from '../util/format.js';
import { describeError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { parseStorePath } from '../nix/store-path.js';
import type { LoftConfig } from '../config/index.js';
import { UploadQueue, type QueueSource } from '../index/queue.js';
import { ensureCacheInfo } from '../upload/cache-info.js';
import { StoreWatcher } from '../watch/store-watcher.js';
import { InboxWatcher, inboxDirFor, readInbox, removeInboxFile } from '../watch/inbox.js';
import { SeenSet, diffValidPaths, hashPartFast } from '../watch/reconcile.js';
import { pushContextOf, pushOptionsOf, type AppContext } from './context.js';
import { StoreDirMissingError } from './errors.js';
import { populateIndex } from './populate.js';
import { PruneScheduler, type PruneRunner } from './prune-schedule.js';
import type { PushEvent } from '../upload/events.js';
import { initialScan } from './scan.js';
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

function listForLog(paths: readonly string[], max = 20): string {
  const shown = paths.slice(0, max).join(' ');
  return paths.length > max ? `${shown} …(+${paths.length - max})` : shown;
}

const SOURCE_TEXT: Record<QueueSource, string> = {
  watch: 'the store watcher',
  hook: 'the post-build hook',
  reconcile: 'reconciliation',
  scan: 'the initial scan',
};

export async function runService(ctx: AppContext, opts: ServiceOptions): Promise<ServiceOutcome> {
  return new Service(ctx, opts).run();
}

class Service {
  private readonly config: LoftConfig;
  private readonly logger: Logger;
  private readonly timing: ServiceTiming;
  private readonly queue: UploadQueue;
  private seen!: SeenSet;
  private worker!: UploadWorker;
  private storeWatcher: StoreWatcher | undefined;
  private inboxWatcher: InboxWatcher | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly pending = new Set<Promise<unknown>>();
  /** Internal drain: the external one, or a failed start. */
  private readonly stop = new AbortController();
  private scanActive = false;
  /** The worker started (so there is something to stop and report). */
  private started = false;
  /** An error that ended the service from inside (the worker's queue failing). */
  private fatal: unknown;
  private stopping = false;
  private inboxBusy: Promise<void> | undefined;
  private inboxAgain = false;
  private reconciling: Promise<void> | undefined;
  private readonly startedAt = Date.now();
  private readonly storeDirOnDisk: string;
  private readonly inboxDir: string;

  constructor(
    private readonly ctx: AppContext,
    private readonly opts: ServiceOptions,
  ) {
    this.config = ctx.config;
    this.logger = ctx.logger;
    this.timing = { ...DEFAULT_TIMING, ...opts.timing };
    this.queue = new UploadQueue(ctx.index);
    this.storeDirOnDisk = this.config.realStoreDir ?? ctx.store.storeDir;
    this.inboxDir = inboxDirFor(this.config.localCachePath);
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
      this.worker = new UploadWorker({
        queue: this.queue,
        pushContext: pushContextOf(this.ctx),
        validPaths: (p) => this.ctx.store.validPaths(p),
        pushOptions: pushOptionsOf(this.config),
        maxAttempts: this.config.queue.maxAttempts,
        retryBaseMs: this.config.queue.retrySeconds * 1000,
        logger: this.logger,
        afterBatch: () => this.checkScanDone(),
        onPushEvent: this.opts.onPushEvent,
      });
      workerDone = this.worker.run(this.stop.signal, signal).catch((e: unknown) => {
        // The queue itself failed (e.g. the index became unwritable): stop the service
        // with that error, so it exits non-zero and systemd restarts it.
        this.fatal ??= e;
        this.stop.abort();
      });
      this.started = true;
      // Files the hook left while the service was down are queued before anything else.
      await this.startInbox();
      this.startStoreWatcher();
      await this.discoverExisting();
      this.startTimers();
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
          `service ready: watching ${this.storeDirOnDisk}, ${c.pending} paths queued, ${c.parked} parked`,
          {
            event: 'ready',
            storeDir: this.storeDirOnDisk,
            queued: c.pending,
            parked: c.parked,
            seen: this.seen.size,
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

  /** Before any intake: the cache's nix-cache-info, stale claims, the store dir, populate. */
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
        {
          event: 'claims-released',
          paths: released,
        },
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
    this.seen = new SeenSet(this.queue);
  }

  /** Run an intake task, tracked so shutdown waits for it. */
  private track(p: Promise<unknown>): void {
    const t = p.catch((e: unknown) => this.logger.warn(describeError(e)));
    this.pending.add(t);
    void t.finally(() => this.pending.delete(t));
  }

  private enqueue(paths: readonly string[], source: QueueSource, force = false): void {
    if (paths.length === 0) return;
    const r = this.queue.enqueue(paths, { source, force, now: Date.now() });
    this.seen.noteQueued(paths);
    if (r.added > 0 || r.unparked > 0) {
      this.logger.info(
        `queued ${r.added} new paths from ${SOURCE_TEXT[source]}` +
          (r.unparked > 0 ? ` (${r.unparked} parked paths given another try)` : ''),
        { event: 'queued', source, added: r.added, unparked: r.unparked, paths: listForLog(paths) },
      );
    }
    this.worker?.wake(source === 'scan' ? 'bulk' : 'live');
  }

  // ---- the store watcher ------------------------------------------------------------

  private startStoreWatcher(): void {
    this.storeWatcher = new StoreWatcher({
      dir: this.storeDirOnDisk,
      storeDir: this.ctx.store.storeDir,
      debounceMs: this.timing.watchDebounceMs,
      logger: this.logger,
      onPaths: (paths) => this.track(this.intakeWatched(paths)),
      onError: (e) => {
        this.logger.warn(
          `${describeError(e)}; watching again in ${this.timing.watchRestartMs} ms`,
          {
            event: 'watch-error',
          },
        );
        this.storeWatcher = undefined;
        this.later(this.timing.watchRestartMs, () => this.restartStoreWatcher());
      },
    });
    this.storeWatcher.start();
  }

  /** Watch again after a failure, for as long as it takes; never throws from a timer. */
  private restartStoreWatcher(): void {
    if (this.stopping) return;
    try {
      this.startStoreWatcher();
      // Whatever happened while blind is found by looking at the whole store.
      this.track(this.reconcile());
    } catch (err) {
      this.storeWatcher = undefined;
      this.logger.error(
        `${describeError(err)}; watching again in ${this.timing.watchRestartMs} ms`,
        {
          event: 'watch-error',
        },
      );
      this.later(this.timing.watchRestartMs, () => this.restartStoreWatcher());
    }
  }

  private async intakeWatched(paths: string[]): Promise<void> {
    // A released lock may belong to a failed build: only valid paths are queued.
    const valid = await this.ctx.store.validPaths(paths);
    this.logger.debug(`store watcher: ${valid.length} of ${paths.length} unlocked paths are valid`);
    this.enqueue(valid, 'watch');
  }

  // ---- the post-build hook's inbox ------------------------------------------------------

  private async startInbox(): Promise<void> {
    try {
      mkdirSync(this.inboxDir, { recursive: true, mode: 0o755 });
      this.inboxWatcher = new InboxWatcher(
        this.inboxDir,
        () => this.track(this.ingestInbox()),
        (e) =>
          this.logger.warn(
            `cannot watch ${this.inboxDir}: ${e.message}; reading it every ${this.timing.inboxPollMs / 1000} s`,
          ),
      );
      this.inboxWatcher.start();
    } catch (e) {
      this.logger.warn(
        `cannot watch the post-build hook's inbox ${this.inboxDir}: ${(e as Error).message}; reading it every ${this.timing.inboxPollMs / 1000} s`,
      );
    }
    await this.ingestInbox().catch((e: unknown) => this.logger.warn(describeError(e)));
  }

  /** Read the inbox; serialized, and re-run once if asked while running. */
  private ingestInbox(): Promise<void> {
    if (this.inboxBusy) {
      this.inboxAgain = true;
      return this.inboxBusy;
    }
    this.inboxBusy = (async () => {
      try {
        do {
          this.inboxAgain = false;
          await this.ingestInboxOnce();
        } while (this.inboxAgain && !this.stopping);
      } finally {
        this.inboxBusy = undefined;
      }
    })();
    return this.inboxBusy;
  }

  private async ingestInboxOnce(): Promise<void> {
    const files = await readInbox(this.inboxDir);
    const storeDir = this.ctx.store.storeDir;
    for (const f of files) {
      const ok: string[] = [];
      const bad = [...f.bad];
      for (const p of f.paths) {
        try {
          parseStorePath(p, storeDir);
          ok.push(p);
        } catch {
          bad.push(p);
        }
      }
      if (bad.length > 0) {
        this.logger.warn(
          `inbox file ${f.file}: ignoring ${bad.length} lines that are not paths of ${storeDir}: ${listForLog(bad, 5)}`,
        );
      }
      // Committed to the queue first; only then is the file deleted.
      this.enqueue(ok, 'hook');
      await removeInboxFile(f.file);
    }
  }

  // ---- scan and reconciliation --------------------------------------------------------

  /** At start: the initial scan when due, otherwise reconciliation (with a baseline the first time). */
  private async discoverExisting(): Promise<void> {
    const index = this.ctx.index;
    const force = this.opts.forceScan;
    const due = this.config.scanOnStartup && index.getState(STATE.initialScanDone) === undefined;
    if (force || due) {
      const why = force
        ? '--force-scan: scanning every valid store path, asking the bucket about each'
        : index.getState(STATE.initialScanQueued) !== undefined
          ? 'resuming the initial scan'
          : 'initial scan: looking at every valid store path';
      this.logger.info(why, { event: 'scan-start', force });
      const r = await initialScan(
        {
          store: this.ctx.store,
          index,
          queue: this.queue,
          seen: this.seen,
          skipSignedByKeys: this.config.skipSignedByKeys,
          logger: this.logger,
        },
        { force, signal: this.stop.signal },
      );
      if (r.interrupted) {
        this.logger.info('initial scan interrupted; it resumes at the next start');
        return;
      }
      index.setState(STATE.initialScanQueued, new Date().toISOString());
      if (index.getState(STATE.seenBaseline) === undefined) {
        index.setState(STATE.seenBaseline, new Date().toISOString());
      }
      this.logger.info(
        `initial scan: ${r.valid} valid paths, ${r.cached} known in the cache, ${r.upstream} signed upstream, ${r.queued} queued`,
        { event: 'scan-queued', ...r },
      );
      this.worker.wake('bulk');
      this.scanActive = true;
      this.checkScanDone();
    } else {
      await this.reconcile();
    }
  }

  private checkScanDone(): void {
    if (!this.scanActive) return;
    if (this.queue.pendingOfSource('scan') > 0) return;
    this.scanActive = false;
    const index = this.ctx.index;
    index.setState(STATE.initialScanDone, new Date().toISOString());
    index.deleteState(STATE.initialScanQueued);
    const parked = this.queue.counts().parked;
    this.logger.info(
      `initial scan complete${parked > 0 ? `; ${parked} paths are parked (see loft --status)` : ''}`,
      { event: 'scan-complete', parked },
    );
  }

  /** Queue valid paths never seen before; forget seen paths no longer in the store. */
  private reconcile(): Promise<void> {
    if (this.reconciling) return this.reconciling;
    this.reconciling = (async () => {
      try {
        const t0 = Date.now();
        const valid = await this.ctx.store.allValidPaths();
        const diff = diffValidPaths(valid, this.seen.view());
        const index = this.ctx.index;
        if (index.getState(STATE.seenBaseline) === undefined) {
          // First start without a scan: what is in the store now is the past, not new work.
          this.seen.add(diff.fresh.map(hashPartFast));
          index.setState(STATE.seenBaseline, new Date().toISOString());
          this.logger.info(
            `first start without an initial scan: the ${valid.length} paths already in the store are not uploaded (set scan_on_startup to upload them)`,
            { event: 'baseline', paths: valid.length },
          );
        } else if (diff.fresh.length > 0) {
          this.enqueue(diff.fresh, 'reconcile');
        }
        this.seen.remove(diff.gone);
        this.logger.debug(`reconciled ${valid.length} valid paths in ${Date.now() - t0} ms`, {
          event: 'reconciled',
          valid: valid.length,
          fresh: diff.fresh.length,
          gone: diff.gone.length,
          ms: Date.now() - t0,
        });
      } finally {
        this.reconciling = undefined;
      }
    })();
    return this.reconciling;
  }

  // ---- timers -------------------------------------------------------------------------

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.splice(this.timers.indexOf(t), 1);
      fn();
    }, ms);
    this.timers.push(t);
  }

  private every(ms: number, fn: () => void): void {
    this.timers.push(setInterval(fn, ms));
  }

  private startTimers(): void {
    this.every(this.timing.reconcileMs, () => this.track(this.reconcile()));
    this.every(this.timing.inboxPollMs, () => this.track(this.ingestInbox()));
    this.every(this.timing.heartbeatMs, () => this.heartbeat());
  }

  private heartbeat(): void {
    const s = this.worker.stats;
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

  // ---- stop ---------------------------------------------------------------------------

  private async shutdown(
    pruner: PruneScheduler | undefined,
    workerDone: Promise<void> | undefined,
  ): Promise<void> {
    this.stopping = true;
    if (this.started && !this.opts.signal.aborted && this.fatal === undefined) {
      this.logger.info('stopping: no new uploads; finishing those in flight', {
        event: 'stopping',
      });
    }
    for (const t of this.timers) clearTimeout(t);
    this.timers.length = 0;
    this.inboxWatcher?.close();
    // Lock removals already seen are queued (durably) before we go.
    this.storeWatcher?.close();
    await Promise.allSettled([...this.pending]);
    await pruner?.stop();
    await workerDone;
    if (!this.started) return;
    const s = this.worker.stats;
    this.logger.info(
      `${this.opts.signal.aborted ? 'aborted' : 'stopped'}: ${s.uploadedPaths} paths uploaded since start`,
      { event: 'stopped', aborted: this.opts.signal.aborted, uploaded: s.uploadedPaths },
    );
  }
}
