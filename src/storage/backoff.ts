/**
 * Retry timing of one S3 request, pure: the failure policy's backoff (src/util/failure-policy.ts)
 * with full jitter, and a server's Retry-After as a floor. Randomness and the clock come in
 * as arguments so the arithmetic is testable.
 */
import {
  S3_MAX_RETRY_AFTER_MS,
  S3_REQUEST_ATTEMPTS,
  S3_REQUEST_BACKOFF,
  backoffMs,
} from '../util/failure-policy.js';

export interface RetryPolicy {
  /** Total tries, including the first. 1 means no retries. */
  maxAttempts: number;
  /** The backoff ceiling for the first retry; doubles per retry. */
  baseDelayMs: number;
  /** No computed delay exceeds this. */
  maxDelayMs: number;
  /** A server's Retry-After is honoured up to this much (a bogus value cannot stall us). */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: S3_REQUEST_ATTEMPTS,
  baseDelayMs: S3_REQUEST_BACKOFF.baseMs,
  maxDelayMs: S3_REQUEST_BACKOFF.maxMs,
  maxRetryAfterMs: S3_MAX_RETRY_AFTER_MS,
};

/**
 * The delay before retry number `retry` (1 for the first retry), given `random` in [0, 1):
 * uniformly random in [0, min(maxDelay, base * 2^(retry-1))]. Full jitter spreads many
 * clients hitting a throttled server instead of having them retry in lockstep.
 */
export function backoffDelayMs(retry: number, policy: RetryPolicy, random: number): number {
  return backoffMs(
    retry,
    { baseMs: policy.baseDelayMs, maxMs: policy.maxDelayMs, jitter: 'full' },
    random,
  );
}

/** The delay to wait: the jittered backoff, but never less than the server asked for. */
export function retryDelayMs(
  retry: number,
  policy: RetryPolicy,
  random: number,
  retryAfterMs: number | undefined,
): number {
  const backoff = backoffDelayMs(retry, policy, random);
  if (retryAfterMs === undefined) return backoff;
  return Math.max(backoff, Math.min(retryAfterMs, policy.maxRetryAfterMs));
}

/**
 * A Retry-After header value in milliseconds from `nowMs`: either delta-seconds ("120") or
 * an HTTP-date. `undefined` when absent or unparsable; never negative.
 */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  // Only date forms: Date.parse also accepts things like "1.5", which are not valid here.
  if (!/[a-z]/i.test(v)) return undefined;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

export function validateRetryPolicy(p: RetryPolicy): string | undefined {
  if (!Number.isInteger(p.maxAttempts) || p.maxAttempts < 1 || p.maxAttempts > 100) {
    return `maxAttempts must be an integer from 1 to 100, got ${p.maxAttempts}`;
  }
  for (const k of ['baseDelayMs', 'maxDelayMs', 'maxRetryAfterMs'] as const) {
    if (!Number.isFinite(p[k]) || p[k] < 0) return `${k} must be a number >= 0, got ${p[k]}`;
  }
  return undefined;
}
