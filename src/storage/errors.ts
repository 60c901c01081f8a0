/**
 * Errors of the storage layer. S3 errors name the operation, the key, the bucket, the
 * endpoint and the region, with the server's status and error code, and never a secret:
 * they do not keep the SDK's error object (whose fields can echo signed request headers).
 */
import {
  LoftError,
  type ErrorCode,
  type ErrorKind,
  type LoftErrorOptions,
} from '../util/errors.js';

/** Where a request went, for messages. */
export interface S3Target {
  bucket: string;
  /** The custom endpoint, or `undefined` for AWS S3. */
  endpoint: string | undefined;
  region: string;
}

/** What the server (or the network) said, copied from the SDK error without secrets. */
export interface S3Failure {
  operation: string;
  key: string | undefined;
  status: number | undefined;
  /** S3 error code (`SignatureDoesNotMatch`, `SlowDown`) or a network code (`ECONNREFUSED`). */
  code: string | undefined;
  message: string | undefined;
  requestId: string | undefined;
  attempts: number;
}

export function describeTarget(t: S3Target): string {
  const where = t.endpoint ?? 'AWS S3';
  return `bucket "${t.bucket}" at ${where} (region ${t.region})`;
}

function describeRequest(f: S3Failure): string {
  return f.key === undefined ? f.operation : `${f.operation} of "${f.key}"`;
}

function describeAnswer(f: S3Failure): string {
  const parts = [f.status, f.code].filter((x) => x !== undefined);
  let s = parts.join(' ');
  // RGW sends no <Message>; the SDK then says "UnknownError", which helps nobody.
  if (f.message && f.message !== 'UnknownError' && f.message !== f.code) s += `: ${f.message}`;
  if (f.attempts > 1) s += ` (after ${f.attempts} attempts)`;
  return s || 'no answer';
}

function describeFailed(t: S3Target, f: S3Failure): string {
  return `S3 ${describeRequest(f)} failed on ${describeTarget(t)}: ${describeAnswer(f)}`;
}

/** Base of every S3 error: carries the target and the failure, for code and for people. */
export class S3Error extends LoftError {
  readonly target: S3Target;
  readonly failure: S3Failure;
  constructor(
    code: ErrorCode,
    kind: ErrorKind,
    message: string,
    target: S3Target,
    failure: S3Failure,
    options: LoftErrorOptions = {},
  ) {
    super(code, kind, message, options);
    this.target = target;
    this.failure = failure;
  }
}

/** 403: bad key, bad secret, wrong region, skewed clock, or no permission on the bucket. */
export class S3AccessDeniedError extends S3Error {
  constructor(target: S3Target, failure: S3Failure) {
    super(
      'S3_ACCESS_DENIED',
      'environment',
      `S3 refused ${describeRequest(failure)} on ${describeTarget(target)}: ${describeAnswer(failure)}`,
      target,
      failure,
      {
        hint:
          "check the access key, the secret key and the region, that this machine's clock is " +
          'right (SigV4 allows 15 minutes of skew), and that the key may use this bucket; an ' +
          'auth proxy in front of S3 may also need extra headers ([s3.extra_headers])',
      },
    );
  }
}

export class S3NoSuchBucketError extends S3Error {
  constructor(target: S3Target, failure: S3Failure) {
    super(
      'S3_NO_SUCH_BUCKET',
      'environment',
      `the ${describeTarget(target)} does not exist (${describeRequest(failure)}: ${describeAnswer(failure)})`,
      target,
      failure,
      { hint: 'create the bucket, or fix s3.bucket / s3.endpoint in the configuration' },
    );
  }
}

/** The server says the request was signed for the wrong region. */
export class S3WrongRegionError extends S3Error {
  constructor(target: S3Target, failure: S3Failure) {
    super(
      'S3_WRONG_REGION',
      'config',
      `S3 rejected the region of ${describeRequest(failure)} on ${describeTarget(target)}: ${describeAnswer(failure)}`,
      target,
      failure,
      {
        hint: 'set s3.region to the bucket\'s region ("garage" for Garage, "auto" for R2)',
      },
    );
  }
}

/** Connection refused, DNS failure, timeouts: we never got an answer. */
export class S3UnreachableError extends S3Error {
  constructor(target: S3Target, failure: S3Failure) {
    super(
      'S3_UNREACHABLE',
      'environment',
      `cannot reach S3 for ${describeRequest(failure)} on ${describeTarget(target)}: ${describeAnswer(failure)}`,
      target,
      failure,
      { hint: 'check s3.endpoint, that the server is running, and the network or proxy between' },
    );
  }
}

/** The credential chain found nothing usable. */
export class S3CredentialsError extends S3Error {
  constructor(target: S3Target, failure: S3Failure) {
    super(
      'S3_NO_CREDENTIALS',
      'config',
      `no S3 credentials for ${describeTarget(target)}: ${failure.message ?? 'none found'}`,
      target,
      failure,
      {
        hint:
          'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with a profile in ' +
          '~/.aws/credentials (the NixOS module sets them from s3.accessKeyFile and s3.secretKeyFile)',
      },
    );
  }
}

/** The server kept failing (5xx, throttling, timeouts) or broke the protocol: S3 is unwell. */
export class S3ServerError extends S3Error {
  constructor(target: S3Target, failure: S3Failure) {
    super('S3_SERVER_ERROR', 'work', describeFailed(target, failure), target, failure, {
      hint:
        'the S3 server is failing or throttling: a push tries the path again and the service ' +
        "pauses; check the server's health, or upload fewer paths at once if it throttles",
    });
  }
}

/** A request S3 refused with an answer about the request itself (a 4xx, 501): no retry helps. */
export class S3RequestError extends S3Error {
  constructor(target: S3Target, failure: S3Failure) {
    super('S3_REQUEST_FAILED', 'work', describeFailed(target, failure), target, failure);
  }
}

export class S3NoSuchKeyError extends S3Error {
  constructor(target: S3Target, failure: S3Failure) {
    super(
      'STORAGE_NO_SUCH_KEY',
      'work',
      `no object "${failure.key}" in ${describeTarget(target)} (${failure.operation})`,
      target,
      failure,
    );
  }
}

/** Options given to a store were wrong; names the option and what is expected. */
export class StorageOptionsError extends LoftError {
  constructor(message: string, hint?: string) {
    super('STORAGE_INVALID_OPTIONS', 'config', message, { hint });
  }
}

/** A key that is not a safe relative object path. Keys come from `keys.ts`, so this is a bug. */
export class InvalidObjectKeyError extends LoftError {
  constructor(key: string, why: string) {
    super('STORAGE_INVALID_KEY', 'internal', `invalid object key ${JSON.stringify(key)}: ${why}`);
  }
}

export class UploadAbortedError extends LoftError {
  constructor(key: string) {
    super('STORAGE_ABORTED', 'aborted', `upload of "${key}" was aborted`);
  }
}

export class StorageDeleteError extends LoftError {
  readonly failedKeys: readonly string[];
  constructor(where: string, failed: { key: string; reason: string }[], deleted: number) {
    const shown = failed
      .slice(0, 5)
      .map((f) => `"${f.key}" (${f.reason})`)
      .join(', ');
    const more = failed.length > 5 ? ` and ${failed.length - 5} more` : '';
    super(
      'STORAGE_DELETE_FAILED',
      'work',
      `could not delete ${failed.length} object(s) from ${where}: ${shown}${more}; ${deleted} deleted`,
      { hint: 'run the prune again; deleting is idempotent' },
    );
    this.failedKeys = failed.map((f) => f.key);
  }
}

export class StoreClosedError extends LoftError {
  constructor(description: string) {
    super('STORAGE_CLOSED', 'internal', `${description} was used after close()`);
  }
}

/** A local cache directory that cannot be used. */
export class LocalDirError extends LoftError {
  constructor(message: string, hint?: string, cause?: unknown) {
    super('LOCAL_DIR_UNUSABLE', 'environment', message, { hint, cause });
  }
}

/** The local directory store's "no such object" (S3's is S3NoSuchKeyError): same code. */
export class LocalNoSuchKeyError extends LoftError {
  constructor(description: string, key: string) {
    super('STORAGE_NO_SUCH_KEY', 'work', `no object "${key}" in ${description}`);
  }
}
