/**
 * The S3 store's options: what a caller may set, and their eager validation into the
 * settings the store runs with (errors say which option and what is expected). Bucket and
 * region follow the one set of rules config uses (`util/s3-rules.ts`).
 */
import { nullLogger, type Logger } from '../util/log.js';
import { checkBucketName, checkRegion } from '../util/s3-rules.js';
import { DEFAULT_RETRY_POLICY, validateRetryPolicy, type RetryPolicy } from './backoff.js';
import { StorageOptionsError, type S3Target } from './errors.js';
import { DEFAULT_PART_SIZE, MAX_PART_SIZE, MIN_PART_SIZE, MiB } from './part-size.js';
import { checkExtraHeaders, type S3Credentials } from './s3-client.js';
import { credentialSource } from './s3-credentials.js';
import type { S3HttpSettings } from './s3-http.js';
import { normaliseEndpoint } from './s3-identity.js';

export interface S3StoreOptions {
  bucket: string;
  /** A custom endpoint (`http://garage.local:3900`); omit for AWS S3. */
  endpoint?: string;
  /** Default `us-east-1` (`garage` for Garage, `auto` for R2). */
  region?: string;
  /** Default: path-style when `endpoint` is set (custom servers rarely do virtual hosts). */
  forcePathStyle?: boolean;
  /** Explicit keys. Without them the standard AWS chain is used (env, shared files, profile). */
  credentials?: S3Credentials;
  /** A profile of the shared AWS config/credentials files (when no explicit credentials). */
  profile?: string;
  /** Already merged and validated by src/config; sent on every request, after signing. */
  extraHeaders?: Record<string, string>;
  /** Tries per request, including the first (default 5). */
  maxAttempts?: number;
  /** Backoff ceiling of the first retry, doubling per retry (default 250 ms). */
  retryBaseDelayMs?: number;
  /** Largest computed backoff (default 20 s). */
  retryMaxDelayMs?: number;
  /** Largest Retry-After honoured (default 60 s). */
  maxRetryAfterMs?: number;
  /** Parts of one upload in flight at once (default 4). */
  partConcurrency?: number;
  /** Bytes of part buffers shared by all uploads of this store (default 128 MiB). */
  memoryBudgetBytes?: number;
  /** Size of the first parts (default 8 MiB, at least 5 MiB). */
  partSize?: number;
  /** Sockets per protocol (default 64). */
  maxSockets?: number;
  /** Time to establish a connection (default 10 s). */
  connectTimeoutMs?: number;
  /** Time a connection may sit idle mid-request before it counts as dead (default 60 s). */
  idleTimeoutMs?: number;
  /**
   * Connections `warm()` opens beside the one `check()` left, so the first uploads find
   * them open (default 8; 1 opens none).
   */
  warmConnections?: number;
  /** Parallel single deletes when the server rejects batch delete (default 8). */
  deleteConcurrency?: number;
  logger?: Logger;
  /** Called after every request attempt: the operation and "ok", the HTTP status or "network". */
  onRequest?: (operation: string, status: string) => void;
}

/** The options, validated and with their defaults filled in. */
export interface S3Settings {
  target: S3Target;
  policy: RetryPolicy;
  http: S3HttpSettings;
  partSize: number;
  partConcurrency: number;
  deleteConcurrency: number;
  warmConnections: number;
  memoryBudgetBytes: number;
  logger: Logger;
  onRequest: S3StoreOptions['onRequest'];
}

const DEFAULT_MEMORY_BUDGET = 128 * MiB;

function checkInt(
  name: string,
  v: number | undefined,
  min: number,
  max: number,
): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new StorageOptionsError(
      `S3 option ${name} must be an integer from ${min} to ${max}, got ${v}`,
    );
  }
  return v;
}

/** Validate every option eagerly; the first problem throws a StorageOptionsError. */
export function resolveS3Options(opts: S3StoreOptions): S3Settings {
  const badBucket =
    typeof opts.bucket === 'string' ? checkBucketName(opts.bucket) : 'is not a string';
  if (badBucket !== undefined) {
    throw new StorageOptionsError(`S3 bucket name ${JSON.stringify(opts.bucket)} ${badBucket}`);
  }
  const endpoint = normaliseEndpoint(opts.endpoint);
  const region = opts.region ?? 'us-east-1';
  const badRegion = checkRegion(region);
  if (badRegion !== undefined) {
    throw new StorageOptionsError(`S3 region ${JSON.stringify(region)} ${badRegion}`);
  }
  if (opts.credentials) {
    const c = opts.credentials;
    if (!c.accessKeyId || !c.secretAccessKey) {
      throw new StorageOptionsError(
        'S3 credentials need both an access key id and a secret access key',
      );
    }
  }
  const policy: RetryPolicy = {
    maxAttempts: opts.maxAttempts ?? DEFAULT_RETRY_POLICY.maxAttempts,
    baseDelayMs: opts.retryBaseDelayMs ?? DEFAULT_RETRY_POLICY.baseDelayMs,
    maxDelayMs: opts.retryMaxDelayMs ?? DEFAULT_RETRY_POLICY.maxDelayMs,
    maxRetryAfterMs: opts.maxRetryAfterMs ?? DEFAULT_RETRY_POLICY.maxRetryAfterMs,
  };
  const bad = validateRetryPolicy(policy);
  if (bad) throw new StorageOptionsError(`S3 retry options: ${bad}`);
  // Same order of checks as before the split, so the first error reported stays the same.
  const partConcurrency = checkInt('partConcurrency', opts.partConcurrency, 1, 64) ?? 4;
  const deleteConcurrency = checkInt('deleteConcurrency', opts.deleteConcurrency, 1, 256) ?? 8;
  const warmConnections = checkInt('warmConnections', opts.warmConnections, 1, 256) ?? 8;
  const partSize =
    checkInt('partSize', opts.partSize, MIN_PART_SIZE, MAX_PART_SIZE) ?? DEFAULT_PART_SIZE;
  const memoryBudgetBytes =
    checkInt('memoryBudgetBytes', opts.memoryBudgetBytes, MIN_PART_SIZE, Number.MAX_SAFE_INTEGER) ??
    DEFAULT_MEMORY_BUDGET;
  return {
    target: { bucket: opts.bucket, endpoint, region },
    policy,
    partSize,
    partConcurrency,
    deleteConcurrency,
    warmConnections,
    memoryBudgetBytes,
    logger: opts.logger ?? nullLogger,
    onRequest: opts.onRequest,
    http: {
      endpoint,
      region,
      bucket: opts.bucket,
      forcePathStyle: opts.forcePathStyle ?? endpoint !== undefined,
      credentials: credentialSource({
        credentials: opts.credentials,
        profile: opts.profile,
        region,
      }),
      extraHeaders: checkExtraHeaders(opts.extraHeaders),
      maxSockets: checkInt('maxSockets', opts.maxSockets, 1, 4096) ?? 64,
      connectTimeoutMs: checkInt('connectTimeoutMs', opts.connectTimeoutMs, 1, 600_000) ?? 10_000,
      idleTimeoutMs: checkInt('idleTimeoutMs', opts.idleTimeoutMs, 1, 3_600_000) ?? 60_000,
    },
  };
}
