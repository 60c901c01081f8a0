/**
 * Retry delays for the service: exponential with "equal jitter" (half fixed, half random),
 * so retries of many paths that failed together spread out instead of stampeding, while
 * each wait stays at least half the nominal one. Pure.
 */

/** The wait before attempt `attempts + 1`, after `attempts` failures (1, 2, 3, ...). */
export function retryDelayMs(
  attempts: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempts - 1));
  return Math.round(exp / 2 + (exp / 2) * random());
}

/** A failed path waits at most this long between attempts. */
export const MAX_RETRY_DELAY_MS = 3_600_000;

/** S3 or the daemon unreachable: the whole worker waits, starting here, doubling... */
export const OUTAGE_BASE_MS = 5_000;
/** ...up to this. */
export const OUTAGE_MAX_MS = 300_000;
