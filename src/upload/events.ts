import type { PlanSummary } from './plan.js';

/** What a push reports as it goes. The pipeline never prints: the CLI renders these. */
export type PushEvent =
  | { type: 'closure'; roots: number; paths: number }
  | { type: 'plan'; summary: PlanSummary }
  | { type: 'cache-info-written'; description: string }
  | { type: 'refreshed'; paths: number }
  /** Cached paths vanished before we could refresh them (a prune elsewhere): planned again. */
  | { type: 'replanned'; gone: number }
  | { type: 'path-started'; path: string; narSize: number; attempt: number }
  | {
      type: 'path-retrying';
      path: string;
      attempt: number;
      delayMs: number;
      error: unknown;
    }
  | { type: 'path-stored'; path: string; narSize: number; fileSize: number; ms: number }
  | { type: 'path-published'; path: string }
  /** Cut off by the abort signal (a second Ctrl-C): nothing of it was published. */
  | { type: 'path-aborted'; path: string }
  | { type: 'path-failed'; path: string; reason: string; error: unknown };

/**
 * Running totals, updated in place as bytes flow, for a progress display that samples
 * them on its own clock (no event per chunk).
 */
export class PushProgress {
  pathsTotal = 0;
  pathsPublished = 0;
  pathsFailed = 0;
  narBytesTotal = 0;
  /** NAR bytes read from the store so far, including paths still in flight. */
  narBytesRead = 0;
  /** Compressed bytes produced so far. */
  fileBytesWritten = 0;
  inFlight = 0;
}
