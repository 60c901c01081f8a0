/**
 * The initial scan: queue every valid store path the cache is missing, once. It only
 * queues (in the bulk lane); the worker uploads, and the service records the scan as done
 * when no scan row is left pending. Because the queue is durable and queueing is
 * idempotent, a scan interrupted at any point (even mid-queueing) is simply run again at
 * the next start and carries on where the queue stands.
 *
 * Paths are filtered before they are queued: those the index knows as present (unless
 * `force`), and those signed by an upstream key (`skip_signed_by_keys`), which costs one
 * path-info query per unknown path, once, and only when such keys are configured (a path
 * that vanishes before its upload is the worker's to notice either way). Paths the
 * include/exclude patterns keep out are counted and never queued.
 */
import { mapLimit } from '../util/limit.js';
import type { Logger } from '../util/log.js';
import type { LocalIndex } from '../index/local-index.js';
import type { UploadQueue } from '../index/queue.js';
import type { PathInfo } from '../store/path-info.js';
import { isUpstream } from '../upload/plan.js';
import { hashPartFast } from '../nix/store-path.js';
import { type SeenSet } from '../watch/reconcile.js';
import { splitExcluded } from './intake.js';

export interface ScanDeps {
  store: {
    allValidPaths(): Promise<string[]>;
    queryPathInfo(path: string): Promise<PathInfo | undefined>;
  };
  index: Pick<LocalIndex, 'getPresentMany'>;
  queue: UploadQueue;
  seen: SeenSet;
  skipSignedByKeys: readonly string[];
  /** `include_patterns`/`exclude_patterns`; undefined when none are configured. */
  exclude?: (storePath: string) => boolean;
  logger: Logger;
  now?: () => number;
}

export interface ScanResult {
  valid: number;
  /** Known present in the cache (not queued). */
  cached: number;
  /** Signed by an upstream key (not queued). */
  upstream: number;
  /** Kept out by the include/exclude patterns (not queued). */
  excluded: number;
  /** Gone between the listing and the path-info query (only asked with upstream keys). */
  vanished: number;
  queued: number;
  interrupted: boolean;
}

/** Path-info queries in flight during a scan. */
const INFO_CONCURRENCY = 8;
/** Paths handled per step (queueing is a transaction per step). */
const STEP = 2000;

export async function initialScan(
  deps: ScanDeps,
  opts: { force: boolean; signal?: AbortSignal },
): Promise<ScanResult> {
  const now = deps.now ?? Date.now;
  const valid = await deps.store.allValidPaths();
  const result: ScanResult = {
    valid: valid.length,
    cached: 0,
    upstream: 0,
    excluded: 0,
    vanished: 0,
    queued: 0,
    interrupted: false,
  };
  const skip = new Set(deps.skipSignedByKeys);
  for (let i = 0; i < valid.length; i += STEP) {
    if (opts.signal?.aborted) {
      result.interrupted = true;
      break;
    }
    const step = valid.slice(i, i + STEP);
    const { kept, excluded } = splitExcluded(step, deps.exclude);
    result.excluded += excluded.length;
    const present = opts.force
      ? new Map<string, unknown>()
      : deps.index.getPresentMany(kept.map(hashPartFast));
    const unknown = kept.filter((p) => !present.has(hashPartFast(p)));
    result.cached += kept.length - unknown.length;
    let toQueue = unknown;
    if (skip.size > 0) {
      const infos = await mapLimit(unknown, INFO_CONCURRENCY, (p) => deps.store.queryPathInfo(p));
      toQueue = [];
      unknown.forEach((p, k) => {
        const info = infos[k];
        if (info === undefined) result.vanished++;
        else if (isUpstream(info, skip)) result.upstream++;
        else toQueue.push(p);
      });
    }
    if (toQueue.length > 0) {
      deps.queue.enqueue(toQueue, { source: 'scan', force: opts.force, now: now() });
      deps.seen.noteQueued(toQueue);
      result.queued += toQueue.length;
    }
    // Cached, upstream and excluded paths are seen too: reconciliation must not queue them later.
    deps.seen.add(step.map(hashPartFast));
    deps.logger.debug(
      `initial scan: ${Math.min(i + STEP, valid.length)} of ${valid.length} paths looked at`,
    );
  }
  return result;
}
