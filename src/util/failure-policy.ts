/**
 * The one failure policy: what a failure means (from the error-code registry), what each
 * layer does about it, how long each retry waits, and which exit code a run that ends on
 * it returns. Every retry loop and classifier reads this module; it is pure (randomness
 * comes in as an argument).
 *
 * Retries nest, and these are the budgets (README, "Failures and retries"):
 * - one S3 request: `s3.max_attempts` tries (default 5), storage layer, full jitter;
 * - one path in a push: PUSH_PATH_ATTEMPTS tries for `retry-path` failures, full jitter;
 * - one path in the service queue: `queue_max_attempts` charged attempts, equal jitter,
 *   then parked; outages are never charged, the worker pauses instead (plain doubling).
 */
import { ERROR_CODES, isErrorCode, type ErrorCode, type FailureMeaning } from './error-codes.js';
import { LoftError, type ErrorKind } from './errors.js';

export type { FailureMeaning } from './error-codes.js';

// ---- exit codes -------------------------------------------------------------------------

/**
 * Process exit codes, one per kind of outcome, so scripts and systemd can tell "fix your
 * command line" from "fix loft.toml" from "S3 or the daemon is down" from "some paths were
 * not uploaded".
 */
export const EXIT = {
  /** Everything asked for was done. */
  ok: 0,
  /** The work ran but part of it failed (e.g. some paths were not uploaded). */
  failed: 1,
  /** Bad command line (unknown flag, bad value, flags that do not combine). */
  usage: 2,
  /** Bad configuration: loft.toml, the signing key file, LOFT_EXTRA_HEADER_* variables. */
  config: 3,
  /** The environment refused: nix-daemon or S3 unreachable or denying access, bad data from them. */
  environment: 4,
  /** A bug in Loft (an invariant did not hold, or an unexpected exception). */
  internal: 70,
  /** Interrupted by SIGINT/SIGTERM before the work finished (128 + SIGINT). */
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

const EXIT_BY_KIND: Record<ErrorKind, ExitCode> = {
  usage: EXIT.usage,
  config: EXIT.config,
  environment: EXIT.environment,
  // Malformed data from the daemon or the bucket: something outside Loft is wrong.
  format: EXIT.environment,
  work: EXIT.failed,
  aborted: EXIT.interrupted,
  internal: EXIT.internal,
};

export function exitCodeForKind(kind: ErrorKind): ExitCode {
  return EXIT_BY_KIND[kind];
}

/** The exit code for an error that ended the run; anything not a LoftError is a bug. */
export function exitCodeFor(error: unknown): ExitCode {
  if (error instanceof LoftError) return exitCodeForKind(error.kind);
  if (error instanceof Error && error.name === 'AbortError') return EXIT.interrupted;
  return EXIT.internal;
}

// ---- what a failure means ---------------------------------------------------------------

/**
 * The meaning of a failure. Not a LoftError (an unexpected stream error): `undefined`,
 * which the layers below treat as "retry the path once more, then charge it".
 */
export function meaningOf(e: unknown): FailureMeaning | undefined {
  if (!(e instanceof LoftError) || !isErrorCode(e.code)) return undefined;
  const spec = ERROR_CODES[e.code];
  if (spec.kind === 'from-cause' && e.cause instanceof LoftError) return meaningOf(e.cause);
  return spec.meaning;
}

/** Whether the storage layer tries one S3 request again after it failed with `code`. */
export function retriesRequest(code: ErrorCode): boolean {
  return ERROR_CODES[code].meaning === 'retry-request';
}

/**
 * The code a `retry-request` failure leaves the storage layer with once the request's
 * tries are spent. The server still failing (S3_SERVER_ERROR) leaves as it is: the path is
 * retried and the service pauses. These two say more to the run as something else: no
 * answer at all is an outage, and a clock S3 keeps refusing is denied access.
 */
const AFTER_REQUEST_RETRIES: Partial<Record<ErrorCode, ErrorCode>> = {
  S3_NO_ANSWER: 'S3_UNREACHABLE',
  S3_CLOCK_SKEW: 'S3_ACCESS_DENIED',
};

export function codeAfterRequestRetries(code: ErrorCode): ErrorCode {
  return AFTER_REQUEST_RETRIES[code] ?? code;
}

/** What a push does with a path's failure. */
export type PushAction = 'retry-path' | 'fail-path' | 'stop-push';

export function pushActionFor(e: unknown): PushAction {
  const m = meaningOf(e);
  if (m === undefined || m === 'retry-path' || m === 'retry-request') return 'retry-path';
  if (m === 'path') return 'fail-path';
  return 'stop-push';
}

/** What the service queue does with a path whose push failed with `e`. */
export type QueueAction = 'pause' | 'charge';

export function queueActionFor(e: unknown): QueueAction {
  const m = meaningOf(e);
  return m === undefined || m === 'path' ? 'charge' : 'pause';
}

// ---- backoff ----------------------------------------------------------------------------

/**
 * One backoff formula, parameters per use: the nominal wait before retry n (1 for the
 * first) is min(maxMs, baseMs * 2^(n-1)); `full` jitter waits uniformly in [0, nominal]
 * (spreads many clients hitting one throttled server), `equal` in [nominal/2, nominal]
 * (spreads paths that failed together while each still waits), `none` exactly nominal.
 */
export interface Backoff {
  baseMs: number;
  maxMs: number;
  jitter: 'full' | 'equal' | 'none';
}

export function backoffMs(retry: number, b: Backoff, random: number): number {
  const nominal = Math.min(b.maxMs, b.baseMs * 2 ** Math.max(0, retry - 1));
  const r = Math.min(Math.max(random, 0), 1);
  switch (b.jitter) {
    case 'full':
      return Math.floor(r * nominal);
    case 'equal':
      return Math.round(nominal / 2 + (nominal / 2) * r);
    case 'none':
      return nominal;
  }
}

/** One S3 request (defaults; `s3.max_attempts` sets the count). */
export const S3_REQUEST_BACKOFF: Backoff = { baseMs: 250, maxMs: 20_000, jitter: 'full' };
export const S3_REQUEST_ATTEMPTS = 5;
/** A server's Retry-After is honoured up to this much (a bogus value cannot stall us). */
export const S3_MAX_RETRY_AFTER_MS = 60_000;

/** One path in a push, for `retry-path` failures. */
export const PUSH_PATH_BACKOFF: Backoff = { baseMs: 1000, maxMs: 30_000, jitter: 'full' };
export const PUSH_PATH_ATTEMPTS = 3;

/** One path in the service queue: base from `queue_retry_seconds`. */
export function queuePathBackoff(baseMs: number): Backoff {
  return { baseMs, maxMs: 3_600_000, jitter: 'equal' };
}

/** The service worker's pause while S3 or the daemon is out: 5 s doubling to 5 min. */
export const OUTAGE_BACKOFF: Backoff = { baseMs: 5_000, maxMs: 300_000, jitter: 'none' };
