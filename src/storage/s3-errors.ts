/**
 * Reading a failed S3 request (errors shaped like the AWS SDK's): which registry code it is,
 * whether the request is tried again (the failure policy's verdict on that code), and which
 * of our error classes a final failure becomes. Works on the error's shape only (status,
 * code, headers), so it applies to service errors, network errors and timeouts alike.
 */
import { codeAfterRequestRetries, retriesRequest } from '../util/failure-policy.js';
import { parseRetryAfter } from './backoff.js';
import type { RetryVerdict } from './retry.js';
import { endpointMistake, S3EndpointError } from './endpoint-hints.js';
import {
  S3AccessDeniedError,
  S3CredentialsError,
  S3NoSuchBucketError,
  S3NoSuchKeyError,
  S3RequestError,
  S3ServerError,
  S3UnreachableError,
  S3WrongRegionError,
  type S3Error,
  type S3Failure,
  type S3Target,
} from './errors.js';

interface SdkErrorShape {
  name?: string;
  code?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number; requestId?: string };
  $response?: { statusCode?: number; headers?: Record<string, string | undefined> };
}

function shape(e: unknown): SdkErrorShape {
  return typeof e === 'object' && e !== null ? (e as SdkErrorShape) : {};
}

export function statusOf(e: unknown): number | undefined {
  const s = shape(e);
  return s.$metadata?.httpStatusCode ?? s.$response?.statusCode;
}

/** The S3 error code (`NoSuchKey`) or the network error code (`ECONNRESET`). */
export function codeOf(e: unknown): string | undefined {
  const s = shape(e);
  if (typeof s.code === 'string') return s.code;
  if (typeof s.Code === 'string') return s.Code;
  // Service errors carry their code as the name; plain `Error`s say nothing useful.
  if (s.name && s.name !== 'Error') return s.name;
  return undefined;
}

/** Server codes that mean the server is unwell, even those that come with a 4xx status. */
const TRANSIENT_CODES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestTimeout',
  'RequestTimeoutException',
  'InternalError',
  'ServiceUnavailable',
]);

/** Network failures: the request may or may not have reached the server; all our bodies replay. */
const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
]);

function isNetworkError(e: unknown): boolean {
  const s = shape(e);
  if (s.name === 'TimeoutError') return true;
  if (s.code && NETWORK_CODES.has(s.code)) return true;
  // Node's "socket hang up" and "aborted" (response cut short) carry ECONNRESET, but a
  // deserializer that saw a truncated body may wrap it; look one level down.
  const cause = (e as { cause?: unknown } | null)?.cause;
  return cause !== undefined && cause !== e && isNetworkError(cause);
}

/**
 * A connection that could not be made and that no retry makes: DNS (`ENOTFOUND`), TLS
 * (`EPROTO`, `CERT_HAS_EXPIRED`, `ERR_TLS_CERT_ALTNAME_INVALID`, `SELF_SIGNED_CERT_IN_CHAIN`).
 * Node's argument errors (`ERR_INVALID_ARG_TYPE`) are bugs, not this.
 */
function isConnectFailure(code: string): boolean {
  return /^E[A-Z]+$|^ERR_(TLS|SSL)_|^[A-Z_]*(CERT|SIGNATURE)[A-Z_]*$/.test(code);
}

export function isAbortError(e: unknown): boolean {
  const s = shape(e);
  return s.name === 'AbortError' || s.code === 'ABORT_ERR';
}

/** The registry codes one failed S3 request maps to (see s3FailureCode). */
export type S3FailureCode =
  | 'S3_NO_CREDENTIALS'
  | 'S3_CLOCK_SKEW'
  | 'S3_SERVER_ERROR'
  | 'S3_NO_SUCH_BUCKET'
  | 'STORAGE_NO_SUCH_KEY'
  | 'S3_WRONG_REGION'
  | 'S3_ACCESS_DENIED'
  | 'S3_REQUEST_FAILED'
  | 'S3_NO_ANSWER'
  | 'S3_UNREACHABLE';

const CLOCK_CODES = new Set(['RequestTimeTooSkewed', 'RequestExpired']);
const REGION_CODES = new Set([
  'AuthorizationHeaderMalformed',
  'PermanentRedirect',
  'IllegalLocationConstraintException',
]);
const ACCESS_CODES = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied']);

/**
 * What one failed S3 request was, as a code of the registry (src/util/error-codes.ts); the
 * failure policy says what each code means, including whether the request is tried again.
 * Reads the error's shape only (status, code, cause), so it covers server answers, network
 * errors and timeouts alike.
 */
export function s3FailureCode(e: unknown): S3FailureCode {
  const s = shape(e);
  if (s.name === 'CredentialsProviderError') return 'S3_NO_CREDENTIALS';
  const status = statusOf(e);
  const code = codeOf(e);
  if (code !== undefined && CLOCK_CODES.has(code)) return 'S3_CLOCK_SKEW';
  // Some come with a 4xx status, but all say "not now" rather than "not this request".
  if (code !== undefined && TRANSIENT_CODES.has(code)) return 'S3_SERVER_ERROR';
  if (code === 'NoSuchBucket') return 'S3_NO_SUCH_BUCKET';
  if (code === 'NoSuchKey') return 'STORAGE_NO_SUCH_KEY';
  if ((code !== undefined && REGION_CODES.has(code)) || status === 301) return 'S3_WRONG_REGION';
  if ((code !== undefined && ACCESS_CODES.has(code)) || status === 403) return 'S3_ACCESS_DENIED';
  if (status !== undefined && status > 0) {
    // 501 Not Implemented and 505 are answers about the request, not the server's health.
    if (status === 501 || status === 505) return 'S3_REQUEST_FAILED';
    if (status >= 500 || status === 429) return 'S3_SERVER_ERROR';
    return 'S3_REQUEST_FAILED';
  }
  if (isNetworkError(e)) return 'S3_NO_ANSWER';
  if (typeof s.code === 'string' && isConnectFailure(s.code)) return 'S3_UNREACHABLE';
  return 'S3_REQUEST_FAILED';
}

export function classifyS3Error(e: unknown, nowMs: number = Date.now()): RetryVerdict {
  if (isAbortError(e)) return { retry: false, reason: 'aborted' };
  const status = statusOf(e);
  const code = codeOf(e);
  const reason = [status, code].filter((x) => x !== undefined).join(' ') || 'unknown error';
  const failure = s3FailureCode(e);
  if (!retriesRequest(failure)) return { retry: false, reason, code: failure };
  const retryAfterMs = parseRetryAfter(shape(e).$response?.headers?.['retry-after'], nowMs);
  return { retry: true, reason, code: failure, retryAfterMs };
}

/** Copy what people need from an SDK error; nothing else (its fields may echo headers). */
export function failureOf(
  e: unknown,
  operation: string,
  key: string | undefined,
  attempts: number,
): S3Failure {
  const s = shape(e);
  return {
    operation,
    key,
    status: statusOf(e),
    code: codeOf(e),
    message: typeof s.message === 'string' ? s.message.split('\n')[0] : undefined,
    requestId: s.$metadata?.requestId,
    attempts,
  };
}

/** Turn a final SDK failure (not retried, or its tries spent) into one of our errors. */
export function translateS3Error(
  e: unknown,
  target: S3Target,
  operation: string,
  key: string | undefined,
  attempts: number,
): S3Error | S3EndpointError {
  const f = failureOf(e, operation, key, attempts);
  const code = codeAfterRequestRetries(s3FailureCode(e));
  const mistake = code === 'STORAGE_NO_SUCH_KEY' ? undefined : endpointMistake(target, f, e);
  if (mistake) return new S3EndpointError(mistake);
  const make = ERROR_CLASSES[code as FinalCode] ?? S3RequestError;
  return new make(target, f);
}

type FinalCode = Exclude<S3FailureCode, 'S3_NO_ANSWER' | 'S3_CLOCK_SKEW'>;

const ERROR_CLASSES: Record<FinalCode, new (t: S3Target, f: S3Failure) => S3Error> = {
  S3_NO_CREDENTIALS: S3CredentialsError,
  S3_SERVER_ERROR: S3ServerError,
  S3_NO_SUCH_BUCKET: S3NoSuchBucketError,
  STORAGE_NO_SUCH_KEY: S3NoSuchKeyError,
  S3_WRONG_REGION: S3WrongRegionError,
  S3_ACCESS_DENIED: S3AccessDeniedError,
  S3_REQUEST_FAILED: S3RequestError,
  S3_UNREACHABLE: S3UnreachableError,
};
