/**
 * Reading the AWS SDK's errors: which are transient (retry), and which of our error classes
 * a final failure becomes. Works on the error's shape only (status, code, headers), so it
 * applies to service errors, network errors and timeouts alike.
 */
import { parseRetryAfter } from './backoff.js';
import type { RetryVerdict } from './retry.js';
import { endpointMistake, S3EndpointError } from './endpoint-hints.js';
import {
  S3AccessDeniedError,
  S3CredentialsError,
  S3NoSuchBucketError,
  S3NoSuchKeyError,
  S3RequestError,
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

/** Server codes worth another try even though some come with a 4xx status. */
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
  // The SDK corrects its clock offset from the failed response, so a retry can succeed.
  'RequestTimeTooSkewed',
  'RequestExpired',
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

const UNREACHABLE_CODES = new Set([...NETWORK_CODES, 'ENOTFOUND', 'TimeoutError']);

function isNetworkError(e: unknown): boolean {
  const s = shape(e);
  if (s.name === 'TimeoutError') return true;
  if (s.code && NETWORK_CODES.has(s.code)) return true;
  // Node's "socket hang up" and "aborted" (response cut short) carry ECONNRESET, but a
  // deserializer that saw a truncated body may wrap it; look one level down.
  const cause = (e as { cause?: unknown } | null)?.cause;
  return cause !== undefined && cause !== e && isNetworkError(cause);
}

export function isAbortError(e: unknown): boolean {
  const s = shape(e);
  return s.name === 'AbortError' || s.code === 'ABORT_ERR';
}

export function classifyS3Error(e: unknown, nowMs: number = Date.now()): RetryVerdict {
  if (isAbortError(e)) return { retry: false, reason: 'aborted' };
  const status = statusOf(e);
  const code = codeOf(e);
  const reason = [status, code].filter((x) => x !== undefined).join(' ') || 'unknown error';
  const retryAfterMs = parseRetryAfter(shape(e).$response?.headers?.['retry-after'], nowMs);
  if (code && TRANSIENT_CODES.has(code)) return { retry: true, reason, retryAfterMs };
  if (status !== undefined && status > 0) {
    // 501 Not Implemented and 505 are answers about the request, not the server's health.
    if (status === 501 || status === 505) return { retry: false, reason };
    if (status >= 500 || status === 429) return { retry: true, reason, retryAfterMs };
    return { retry: false, reason };
  }
  if (isNetworkError(e)) return { retry: true, reason };
  return { retry: false, reason };
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

/** Turn a final SDK failure into one of our errors. */
export function translateS3Error(
  e: unknown,
  target: S3Target,
  operation: string,
  key: string | undefined,
  attempts: number,
): S3Error | S3EndpointError {
  const f = failureOf(e, operation, key, attempts);
  const mistake = f.code === 'NoSuchKey' ? undefined : endpointMistake(target, f, e);
  if (mistake) return new S3EndpointError(mistake);
  const s = shape(e);
  if (s.name === 'CredentialsProviderError') return new S3CredentialsError(target, f);
  if (f.code === 'NoSuchBucket') return new S3NoSuchBucketError(target, f);
  if (f.code === 'NoSuchKey') return new S3NoSuchKeyError(target, f);
  if (
    f.code === 'AuthorizationHeaderMalformed' ||
    f.code === 'PermanentRedirect' ||
    f.code === 'IllegalLocationConstraintException' ||
    f.status === 301
  ) {
    return new S3WrongRegionError(target, f);
  }
  if (
    f.status === 403 ||
    f.code === 'InvalidAccessKeyId' ||
    f.code === 'SignatureDoesNotMatch' ||
    f.code === 'AccessDenied'
  ) {
    return new S3AccessDeniedError(target, f);
  }
  if (f.status === undefined && f.code !== undefined && UNREACHABLE_CODES.has(f.code)) {
    return new S3UnreachableError(target, f);
  }
  if (f.status === undefined && isNetworkError(e)) return new S3UnreachableError(target, f);
  return new S3RequestError(target, f);
}
