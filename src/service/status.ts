/**
 * What `loft --status` reports, read from the local index alone (no S3, no daemon), so it
 * works while the service runs and while S3 is down: the queue (pending, in progress,
 * retrying with the next attempt's time, parked with reasons), the post-build hook's inbox,
 * the initial scan, the index's size and the last prune.
 */
import type { LoftConfig } from '../config/index.js';
import { formatSchedule, nextRun } from '../config/schedule.js';
import type { LocalIndex } from '../index/local-index.js';
import type { QueueEntry, QueueSource, UploadQueue } from '../index/queue.js';
import { STATE } from './state-keys.js';

export interface StatusPath {
  path: string;
  source: QueueSource;
  attempts: number;
  enqueuedAt: string;
  /** Retrying rows: when the next attempt is due. */
  nextAttemptAt?: string;
  lastError?: string;
  /** Parked rows: since when. */
  parkedAt?: string;
  inProgress?: boolean;
}

export interface StatusReport {
  config: string;
  cache: string;
  index: { path: string; presentPaths: number; seenPaths: number };
  queue: {
    pending: number;
    inProgress: number;
    retrying: number;
    parked: number;
    bySource: Record<QueueSource, number>;
    /** Up to `limit` pending rows: in progress first, then retrying, then waiting. */
    pendingPaths: StatusPath[];
    parkedPaths: StatusPath[];
  };
  inbox: { dir: string; files: number };
  initialScan: {
    enabled: boolean;
    state: 'done' | 'in-progress' | 'not-run' | 'off';
    doneAt?: string;
    queuedAt?: string;
  };
  prune: {
    enabled: boolean;
    schedule: string;
    lastRun?: string;
    lastSummary?: string;
    nextRun?: string;
  };
}

const iso = (ms: number) => new Date(ms).toISOString();

function toStatusPath(e: QueueEntry, now: number): StatusPath {
  const out: StatusPath = {
    path: e.storePath,
    source: e.source,
    attempts: e.attempts,
    enqueuedAt: iso(e.enqueuedAt),
  };
  if (e.claimedBy !== undefined && e.parkedAt === undefined) out.inProgress = true;
  if (e.parkedAt !== undefined) out.parkedAt = iso(e.parkedAt);
  else if (e.attempts > 0) out.nextAttemptAt = iso(Math.max(e.nextAttemptAt, now));
  if (e.lastError !== undefined) out.lastError = e.lastError;
  return out;
}

export function collectStatus(opts: {
  config: LoftConfig;
  cacheDescription: string;
  index: LocalIndex;
  queue: UploadQueue;
  inbox: { dir: string; files: number };
  now?: Date;
  limit?: number;
}): StatusReport {
  const { config, index, queue } = opts;
  const now = opts.now ?? new Date();
  const limit = opts.limit ?? 50;
  const counts = queue.counts();
  const state = index.allState();
  const scanDone = state[STATE.initialScanDone];
  const scanQueued = state[STATE.initialScanQueued];
  const lastPrune = state[STATE.lastPrune];
  const scan: StatusReport['initialScan'] = {
    enabled: config.scanOnStartup,
    state:
      scanDone !== undefined
        ? 'done'
        : scanQueued !== undefined
          ? 'in-progress'
          : config.scanOnStartup
            ? 'not-run'
            : 'off',
  };
  if (scanDone !== undefined) scan.doneAt = scanDone;
  if (scanQueued !== undefined) scan.queuedAt = scanQueued;
  const prune: StatusReport['prune'] = {
    enabled: config.prune.enabled,
    schedule: formatSchedule(config.prune.schedule),
  };
  if (lastPrune !== undefined) prune.lastRun = lastPrune;
  if (state[STATE.lastPruneSummary] !== undefined)
    prune.lastSummary = state[STATE.lastPruneSummary];
  if (config.prune.enabled) {
    const last = lastPrune === undefined ? undefined : new Date(lastPrune);
    prune.nextRun = nextRun(config.prune.schedule, now, last).toISOString();
  }
  return {
    config: config.source,
    cache: opts.cacheDescription,
    index: { path: index.path, presentPaths: index.countPresent(), seenPaths: queue.seenCount() },
    queue: {
      ...counts,
      pendingPaths: queue.listPending(limit).map((e) => toStatusPath(e, now.getTime())),
      parkedPaths: queue.listParked(limit).map((e) => toStatusPath(e, now.getTime())),
    },
    inbox: opts.inbox,
    initialScan: scan,
    prune,
  };
}
