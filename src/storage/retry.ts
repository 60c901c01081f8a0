/**
 * The retry loop. Only operations whose request body is replayable are retried (every body
 * we hand the SDK is a Buffer or a string: `put` takes bytes, `upload` buffers each part),
 * so a retry re-sends the same bytes. The caller's classifier decides what is transient.
 */
import { sleep as abortableSleep } from '../util/limit.js';
import { retryDelayMs, type RetryPolicy } from './backoff.js';

export interface RetryVerdict {
  retry: boolean;
  /** Short reason for logs: "503 SlowDown", "ECONNRESET". */
  reason: string;
  /** The error-code registry's name for the failure ("S3_SERVER_ERROR"), for logs. */
  code?: string;
  retryAfterMs?: number;
}

export interface RetryHooks {
  classify(error: unknown): RetryVerdict;
  signal?: AbortSignal;
  /** Called before each wait; for logging. */
  onRetry?(info: { attempt: number; delayMs: number; reason: string; code?: string }): void;
  random?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Thrown when attempts run out or the error is permanent; carries how many tries were made. */
export class RetryExhausted extends Error {
  constructor(
    readonly lastError: unknown,
    readonly attempts: number,
  ) {
    super('retries exhausted');
  }
}

/**
 * Run `fn(attempt)` until it succeeds, the error is not retryable, attempts run out, or
 * `signal` aborts. Failures come out as `RetryExhausted` so the caller knows the count;
 * an abort comes out as the abort reason.
 */
export async function withRetry<T>(
  policy: RetryPolicy,
  hooks: RetryHooks,
  fn: (attempt: number) => Promise<T>,
): Promise<T> {
  const random = hooks.random ?? Math.random;
  const sleep = hooks.sleep ?? abortableSleep;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (e) {
      if (hooks.signal?.aborted) throw hooks.signal.reason;
      const verdict = hooks.classify(e);
      if (!verdict.retry || attempt >= policy.maxAttempts) throw new RetryExhausted(e, attempt);
      const delayMs = retryDelayMs(attempt, policy, random(), verdict.retryAfterMs);
      const { reason, code } = verdict;
      hooks.onRetry?.(
        code === undefined ? { attempt, delayMs, reason } : { attempt, delayMs, reason, code },
      );
      await sleep(delayMs, hooks.signal);
    }
  }
}
