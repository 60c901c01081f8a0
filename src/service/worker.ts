/**
 * The queue worker: takes due rows from the durable queue in batches and pushes their
 * closures through the same pipeline as `--upload-path` (closure order, verified NARs,
 * signed narinfos published last). Live rows (just built) go before bulk rows (the initial
 * scan); a bulk batch is drained (in-flight NARs finish, the rest goes back to the queue)
 * as soon as live work arrives, so a long scan does not delay fresh builds by more than
 * the NARs already in flight.
 *
 * Outcomes per queued path (a batch root):
 * - in the cache (uploaded, found cached, left to upstream) or no longer in the store:
 *   the row is deleted;
 * - failed: an attempt is recorded; it is due again after an exponential backoff, and
 *   parked after `maxAttempts` (kept with its error until rediscovered);
 * - not started or not published because the batch was drained: the claim is released,
 *   no attempt counted;
 * - the whole batch failed on an outage (S3 or the daemon unreachable or refusing): claims
 *   are released, no attempt counted, and the worker waits (5 s doubling to 5 min) before
 *   the next batch, so an outage never parks paths.
 *
 * Over 400 lines because a batch's run, drain and settling (the outcomes above) read the
 * same per-batch state: which roots started and which were published.
 */
import { performance } from 'node:perf_hooks';
import { describeError } from '../util/errors.js';
import {
  OUTAGE_BACKOFF,
  backoffMs,
  queueActionFor,
  queuePathBackoff,
} from '../util/failure-policy.js';
import type { Logger } from '../util/log.js';
import { parseStorePath } from '../nix/store-path.js';
import type { QueueEntry, QueueLane, UploadQueue } from '../index/queue.js';
import { push, type PushContext, type PushOptions, type PushResult } from '../upload/push.js';
import type { PushEvent } from '../upload/events.js';

/** Roots per batch: live paths come a few at a time; scan batches stay short so a drain is quick. */
export const BATCH_LIMIT: Record<QueueLane, number> = { live: 256, bulk: 64 };

export interface WorkerDeps {
  queue: UploadQueue;
  pushContext: PushContext;
  /** The valid subset of paths (the daemon's QueryValidPaths). */
  validPaths(paths: readonly string[]): Promise<string[]>;
  pushOptions: Omit<PushOptions, 'drain' | 'signal' | 'onEvent' | 'ignoreIndex'>;
  maxAttempts: number;
  retryBaseMs: number;
  logger: Logger;
  now?: () => number;
  /** After each batch (the service checks whether the initial scan completed). */
  afterBatch?: () => void;
  /** After each push that ran, with its roots (build logs, realisations); never throws. */
  afterPush?: (result: PushResult, roots: readonly string[]) => Promise<void>;
  /** Every push event, before the worker's own handling (metrics). */
  onPushEvent?: (ev: PushEvent) => void;
}

export interface WorkerStats {
  batches: number;
  uploadedPaths: number;
  narBytes: number;
  fileBytes: number;
  failedAttempts: number;
  parked: number;
}

/**
 * The failure is not the path's (the failure policy's `pause`): the worker waits instead
 * of charging attempts, so an outage of any length never parks a path.
 */
function isOutage(e: unknown): boolean {
  return queueActionFor(e) === 'pause';
}

export function emptyWorkerStats(): WorkerStats {
  return { batches: 0, uploadedPaths: 0, narBytes: 0, fileBytes: 0, failedAttempts: 0, parked: 0 };
}

export class UploadWorker {
  readonly stats: WorkerStats = emptyWorkerStats();
  private wakeUp: (() => void) | undefined;
  private woken = false;
  private current: { lane: QueueLane; drain: AbortController } | undefined;
  /** Pauses in a row; the next pause is longer. */
  private outages = 0;
  private outageUntil = 0;
  private readonly now: () => number;

  constructor(private readonly deps: WorkerDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** New rows were queued: stop waiting; a running bulk batch yields to live work. */
  wake(lane: QueueLane = 'live'): void {
    this.woken = true;
    if (lane === 'live' && this.current?.lane === 'bulk' && !this.current.drain.signal.aborted) {
      this.deps.logger.debug('live paths queued: draining the scan batch');
      this.current.drain.abort();
    }
    this.wakeUp?.();
  }

  /**
   * Work until `drain` fires (the running batch finishes its in-flight NARs) or `signal`
   * aborts it (in-flight uploads are aborted; nothing half-written is published).
   */
  async run(drain: AbortSignal, signal: AbortSignal): Promise<void> {
    while (!drain.aborted && !signal.aborted) {
      const now = this.now();
      if (now < this.outageUntil) {
        await this.sleep(this.outageUntil - now, drain, signal, false);
        continue;
      }
      try {
        this.deps.queue.dropCachedParked();
      } catch (e) {
        this.deps.logger.warn(`could not tidy the queue: ${describeError(e)}`);
      }
      let lane: QueueLane = 'live';
      let batch = this.deps.queue.take('live', BATCH_LIMIT.live, now);
      if (batch.length === 0) {
        lane = 'bulk';
        batch = this.deps.queue.take('bulk', BATCH_LIMIT.bulk, now);
      }
      if (batch.length === 0) {
        const due = this.deps.queue.nextDueAt();
        await this.sleep(due === undefined ? undefined : due - now, drain, signal, true);
        continue;
      }
      await this.runBatch(batch, lane, drain, signal);
      this.stats.batches++;
      this.deps.afterBatch?.();
    }
  }

  /** Wait until woken, `ms` passed, or the service stops. */
  private sleep(
    ms: number | undefined,
    drain: AbortSignal,
    signal: AbortSignal,
    wakeable: boolean,
  ): Promise<void> {
    if (wakeable && this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        if (timer) clearTimeout(timer);
        drain.removeEventListener('abort', done);
        signal.removeEventListener('abort', done);
        this.wakeUp = undefined;
        this.woken = false;
        resolve();
      };
      // setTimeout holds at most 2^31-1 ms; waking early and looking again is harmless.
      if (ms !== undefined) timer = setTimeout(done, Math.max(0, Math.min(ms, 2 ** 31 - 1)));
      drain.addEventListener('abort', done, { once: true });
      signal.addEventListener('abort', done, { once: true });
      if (wakeable) this.wakeUp = done;
    });
  }

  private async runBatch(
    entries: QueueEntry[],
    lane: QueueLane,
    drain: AbortSignal,
    signal: AbortSignal,
  ): Promise<void> {
    const { queue, logger } = this.deps;
    const storeDir = this.deps.pushContext.store.storeDir;
    // Rows from another store directory (an older config) can never be uploaded here.
    const wellFormed: QueueEntry[] = [];
    for (const e of entries) {
      try {
        parseStorePath(e.storePath, storeDir);
        wellFormed.push(e);
      } catch {
        logger.warn(`dropping ${e.storePath} from the queue: not a path of ${storeDir}`);
        queue.complete([e.hashPart]);
      }
    }
    if (wellFormed.length === 0) return;

    const batchDrain = new AbortController();
    const onDrain = () => batchDrain.abort();
    if (drain.aborted) batchDrain.abort();
    else drain.addEventListener('abort', onDrain, { once: true });
    this.current = { lane, drain: batchDrain };
    try {
      await this.attempt(wellFormed, lane, batchDrain.signal, signal);
    } finally {
      drain.removeEventListener('abort', onDrain);
      this.current = undefined;
    }
  }

  /**
   * Hold the roots, drop the ones no longer valid, push the rest, and settle every row. A
   * failure of the whole push that is not an outage is retried path by path, so one bad
   * root cannot charge an attempt to the others.
   */
  private async attempt(
    entries: QueueEntry[],
    lane: QueueLane,
    drain: AbortSignal,
    signal: AbortSignal,
  ): Promise<void> {
    const { queue, logger, pushContext } = this.deps;
    const t0 = performance.now();
    let lease: { release(): void } | undefined;
    try {
      // Rooted first, so nothing valid now can be collected before it is uploaded.
      lease = await pushContext.store.holdTempRoots(entries.map((e) => e.storePath));
      const valid = new Set(await this.deps.validPaths(entries.map((e) => e.storePath)));
      const gone = entries.filter((e) => !valid.has(e.storePath));
      if (gone.length > 0) {
        logger.info(`${gone.length} queued paths are no longer in the store; dropped`, {
          event: 'dropped',
          paths: gone.length,
        });
        queue.complete(gone.map((e) => e.hashPart));
      }
      const live = entries.filter((e) => valid.has(e.storePath));
      if (live.length === 0) return;
      const published = new Set<string>();
      const started = new Set<string>();
      let result: PushResult;
      try {
        result = await push(
          pushContext,
          live.map((e) => e.storePath),
          {
            ...this.deps.pushOptions,
            ignoreIndex: live[0]!.force,
            drain,
            signal,
            onEvent: (ev) => {
              this.deps.onPushEvent?.(ev);
              this.onPushEvent(ev, published, started);
            },
          },
        );
      } catch (e) {
        if (signal.aborted || isOutage(e) || live.length === 1) throw e;
        logger.warn(
          `a batch of ${live.length} paths failed as a whole (${describeError(e)}); trying them one by one`,
        );
        lease.release();
        lease = undefined;
        for (let i = 0; i < live.length; i++) {
          if (drain.aborted || signal.aborted) {
            queue.release(live.slice(i).map((x) => x.hashPart));
            break;
          }
          await this.attempt([live[i]!], lane, drain, signal);
        }
        return;
      }
      await this.deps.afterPush?.(
        result,
        live.map((e) => e.storePath),
      );
      const outage = result.failed.find((f) => isOutage(f.error));
      if (outage) {
        // What was published is done; the rest waits for the server, not charged.
        const failed = new Set(result.failed.map((f) => f.path));
        const ok = live.filter((e) => !failed.has(e.storePath));
        this.settle(ok, lane, result, published, started, performance.now() - t0);
        queue.release(live.filter((e) => failed.has(e.storePath)).map((e) => e.hashPart));
        this.pause(outage.error);
        return;
      }
      this.outages = 0;
      this.settle(live, lane, result, published, started, performance.now() - t0);
    } catch (e) {
      if (signal.aborted) {
        queue.release(entries.map((x) => x.hashPart));
        return;
      }
      if (entries.length === 1 && !isOutage(e)) {
        this.recordFailure(entries[0]!, describeError(e));
        return;
      }
      queue.release(entries.map((x) => x.hashPart));
      this.pause(e);
    } finally {
      lease?.release();
    }
  }

  /** Stop taking batches for a while (5 s, doubling to 5 min while it lasts). */
  private pause(e: unknown): void {
    const ms = backoffMs(++this.outages, OUTAGE_BACKOFF, 0);
    this.outageUntil = this.now() + ms;
    this.deps.logger.error(`uploads paused for ${Math.round(ms / 1000)} s: ${describeError(e)}`, {
      event: 'outage',
      retryInMs: ms,
    });
  }

  /** Settle each row of a finished push: done, failed (attempt counted) or back in line. */
  private settle(
    entries: QueueEntry[],
    lane: QueueLane,
    result: PushResult,
    published: ReadonlySet<string>,
    started: ReadonlySet<string>,
    ms: number,
  ): void {
    const { queue, logger } = this.deps;
    const failed = new Map(result.failed.map((f) => [f.path, f]));
    const notStarted = new Set(result.notStarted);
    const done: string[] = [];
    const back: string[] = [];
    for (const e of entries) {
      const f = failed.get(e.storePath);
      if (f) this.recordFailure(e, f.reason);
      // A root whose NAR went up but whose narinfo waited on a path the drain left out is
      // not in the cache yet: it goes back in line (its NAR is reused by key next time).
      else if (
        notStarted.has(e.storePath) ||
        (started.has(e.storePath) && !published.has(e.storePath))
      ) {
        back.push(e.hashPart);
      } else done.push(e.hashPart);
    }
    queue.complete(done);
    queue.release(back);
    const s = result.summary;
    const line = {
      event: 'batch',
      lane,
      roots: entries.length,
      uploaded: published.size,
      cached: s.alreadyCached.paths,
      upstream: s.upstream.paths,
      excluded: s.excluded.paths,
      failed: result.failed.length,
      requeued: back.length,
      ms: Math.round(ms),
    };
    const text =
      `batch of ${line.roots} queued paths: ${line.uploaded} uploaded, ${line.cached} already cached, ` +
      `${line.upstream} left to upstream` +
      (line.excluded > 0 ? `, ${line.excluded} excluded by patterns` : '') +
      `, ${line.failed} failed` +
      (back.length > 0 ? `, ${back.length} back in the queue` : '');
    if (line.uploaded > 0 || line.failed > 0) logger.info(text, line);
    else logger.debug(text, line);
  }

  private onPushEvent(ev: PushEvent, published: Set<string>, started: Set<string>): void {
    const { logger } = this.deps;
    switch (ev.type) {
      case 'path-started':
        started.add(ev.path);
        logger.debug(`uploading ${ev.path}`, {
          event: 'path-started',
          path: ev.path,
          narSize: ev.narSize,
        });
        break;
      case 'path-stored':
        this.stats.narBytes += ev.narSize;
        this.stats.fileBytes += ev.fileSize;
        break;
      case 'path-published':
        published.add(ev.path);
        this.stats.uploadedPaths++;
        logger.info(`uploaded ${ev.path}`, { event: 'uploaded', path: ev.path });
        break;
      case 'path-retrying':
        logger.warn(`retrying ${ev.path} in ${ev.delayMs} ms: ${describeError(ev.error)}`, {
          event: 'path-retrying',
          path: ev.path,
        });
        break;
      case 'cache-info-written':
        logger.info(`wrote nix-cache-info to ${ev.description}`, { event: 'cache-info-written' });
        break;
      case 'refreshed':
        logger.info(`refreshed ${ev.paths} cached narinfos older than half the prune retention`);
        break;
      default:
        break;
    }
  }

  private recordFailure(entry: QueueEntry, reason: string): void {
    const { queue, logger, maxAttempts, retryBaseMs } = this.deps;
    const out = queue.fail(entry.hashPart, reason, {
      now: this.now(),
      maxAttempts,
      delayMs: (n) => backoffMs(n, queuePathBackoff(retryBaseMs), Math.random()),
    });
    if (!out) return;
    this.stats.failedAttempts++;
    if (out.parked) {
      this.stats.parked++;
      logger.error(
        `parked ${entry.storePath} after ${out.attempts} failed attempts: ${reason}; ` +
          'it stays in the queue (see loft --status) and is retried when it is discovered again',
        { event: 'parked', path: entry.storePath, attempts: out.attempts, reason },
      );
    } else {
      const inMs = out.nextAttemptAt! - this.now();
      logger.warn(
        `failed ${entry.storePath} (attempt ${out.attempts} of ${maxAttempts}), retrying in ${Math.round(inMs / 1000)} s: ${reason}`,
        {
          event: 'path-failed',
          path: entry.storePath,
          attempts: out.attempts,
          retryInMs: inMs,
          reason,
        },
      );
    }
  }
}
