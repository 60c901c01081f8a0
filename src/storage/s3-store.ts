/**
 * The BlobStore on S3-compatible storage (AWS S3, Garage, MinIO, Ceph RGW, R2, B2, ...).
 *
 * Memory bound: part buffers of all concurrent `upload`s of one store share one budget
 * (`memoryBudgetBytes`, default 128 MiB): buffers granted to parts plus idle pooled buffers
 * stay within max(memoryBudgetBytes, largest part), whatever the number of uploads; each
 * upload has at most `partConcurrency` parts in flight (default 4). Parts are 8 MiB up to
 * 7.8 GiB (see part-size.ts), so by default up to 16 parts are in flight across the store.
 * Not counted: one source chunk read ahead per upload, and the SDK's and sockets' own
 * buffers (small: bodies are sent from the part buffers without copies).
 *
 * Every request goes through `withRetry` with our policy; every failure leaves as one of
 * the errors in errors.ts, naming the bucket, endpoint and region and never a secret.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { nullLogger, type Logger } from '../util/log.js';
import { DEFAULT_RETRY_POLICY, validateRetryPolicy, type RetryPolicy } from './backoff.js';
import {
  S3Error,
  S3NoSuchBucketError,
  S3RequestError,
  StorageDeleteError,
  StorageOptionsError,
  StoreClosedError,
  type S3Target,
} from './errors.js';
import { assertValidKey, assertValidPrefix } from './keys.js';
import { BufferPool, MemoryBudget } from './memory-budget.js';
import { normaliseEndpoint, s3CacheIdentity } from './s3-identity.js';
import { DEFAULT_PART_SIZE, MAX_PART_SIZE, MIN_PART_SIZE, MiB, planParts } from './part-size.js';
import type {
  BlobStore,
  ByteSource,
  CopyOptions,
  ListOptions,
  ListedObject,
  ObjectInfo,
  PendingUpload,
  PutOptions,
  UploadOptions,
  UploadResult,
} from './port.js';
import { RetryExhausted, withRetry } from './retry.js';
import { checkExtraHeaders, createS3Client, type S3Credentials } from './s3-client.js';
import { classifyS3Error, codeOf, statusOf, translateS3Error } from './s3-errors.js';
import { streamedUpload, type CompletedPart, type PartSink } from './streamed-upload.js';

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
  /** Parallel single deletes when the server rejects batch delete (default 8). */
  deleteConcurrency?: number;
  logger?: Logger;
  /** Called after every request attempt: the operation and "ok", the HTTP status or "network". */
  onRequest?: (operation: string, status: string) => void;
}

const DEFAULT_MEMORY_BUDGET = 128 * MiB;

export interface MemoryUse {
  inUse: number;
  peak: number;
  budget: number;
  idle: number;
  allocations: number;
}
const BATCH_DELETE_MAX = 1000;

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

/** `bucket/key` for x-amz-copy-source, each segment URL-encoded, slashes kept. */
function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

const isNotFound = (e: unknown) => statusOf(e) === 404;

class S3BlobStore implements BlobStore {
  readonly id: string;
  readonly description: string;
  readonly #client: S3Client;
  readonly #target: S3Target;
  readonly #bucket: string;
  readonly #policy: RetryPolicy;
  readonly #onRequest: S3StoreOptions['onRequest'];
  readonly #budget: MemoryBudget;
  readonly #pool: BufferPool;
  readonly #partSize: number;
  readonly #partConcurrency: number;
  readonly #deleteConcurrency: number;
  readonly #log: Logger;
  #batchDeleteUnsupported = false;
  #closing: Promise<void> | undefined;
  #inFlight = 0;
  #idle: (() => void) | undefined;

  constructor(opts: S3StoreOptions) {
    if (
      typeof opts.bucket !== 'string' ||
      !/^[a-zA-Z0-9][a-zA-Z0-9._-]{1,254}$/.test(opts.bucket)
    ) {
      throw new StorageOptionsError(
        `S3 bucket name ${JSON.stringify(opts.bucket)} is not valid`,
        'a bucket name has 2-255 letters, digits, dots, hyphens or underscores',
      );
    }
    const endpoint = normaliseEndpoint(opts.endpoint);
    const region = opts.region ?? 'us-east-1';
    if (!/^[a-z0-9-]+$/i.test(region)) {
      throw new StorageOptionsError(`S3 region ${JSON.stringify(region)} is not valid`);
    }
    if (opts.credentials) {
      const c = opts.credentials;
      if (!c.accessKeyId || !c.secretAccessKey) {
        throw new StorageOptionsError(
          'S3 credentials need both an access key id and a secret access key',
        );
      }
    }
    this.#policy = {
      maxAttempts: opts.maxAttempts ?? DEFAULT_RETRY_POLICY.maxAttempts,
      baseDelayMs: opts.retryBaseDelayMs ?? DEFAULT_RETRY_POLICY.baseDelayMs,
      maxDelayMs: opts.retryMaxDelayMs ?? DEFAULT_RETRY_POLICY.maxDelayMs,
      maxRetryAfterMs: opts.maxRetryAfterMs ?? DEFAULT_RETRY_POLICY.maxRetryAfterMs,
    };
    const bad = validateRetryPolicy(this.#policy);
    if (bad) throw new StorageOptionsError(`S3 retry options: ${bad}`);
    this.#partConcurrency = checkInt('partConcurrency', opts.partConcurrency, 1, 64) ?? 4;
    this.#deleteConcurrency = checkInt('deleteConcurrency', opts.deleteConcurrency, 1, 256) ?? 8;
    this.#partSize =
      checkInt('partSize', opts.partSize, MIN_PART_SIZE, MAX_PART_SIZE) ?? DEFAULT_PART_SIZE;
    const budget =
      checkInt(
        'memoryBudgetBytes',
        opts.memoryBudgetBytes,
        MIN_PART_SIZE,
        Number.MAX_SAFE_INTEGER,
      ) ?? DEFAULT_MEMORY_BUDGET;
    this.#budget = new MemoryBudget(budget);
    this.#pool = new BufferPool(this.#budget);
    this.#log = opts.logger ?? nullLogger;
    this.#onRequest = opts.onRequest;
    this.#bucket = opts.bucket;
    this.#target = { bucket: opts.bucket, endpoint, region };
    ({ id: this.id, description: this.description } = s3CacheIdentity(this.#target));
    this.#client = createS3Client({
      endpoint,
      region,
      forcePathStyle: opts.forcePathStyle ?? endpoint !== undefined,
      credentials: opts.credentials,
      profile: opts.profile,
      extraHeaders: checkExtraHeaders(opts.extraHeaders),
      maxSockets: checkInt('maxSockets', opts.maxSockets, 1, 4096) ?? 64,
      connectTimeoutMs: checkInt('connectTimeoutMs', opts.connectTimeoutMs, 1, 600_000) ?? 10_000,
      idleTimeoutMs: checkInt('idleTimeoutMs', opts.idleTimeoutMs, 1, 3_600_000) ?? 60_000,
      logger: this.#log,
    });
  }

  /**
   * Part-buffer bytes granted now and at most so far, idle pooled bytes, and buffers
   * allocated (for tests and benchmarks).
   */
  get memoryUse(): MemoryUse {
    return {
      inUse: this.#budget.inUse,
      peak: this.#budget.peak,
      budget: this.#budget.capacity,
      idle: this.#pool.idleBytes,
      allocations: this.#pool.allocations,
    };
  }

  // One request with retries; failures leave translated. `fn` gets the attempt number.
  async #run<T>(
    operation: string,
    key: string | undefined,
    fn: (attempt: number) => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    this.#assertOpen();
    return this.#track(() => this.#retry(operation, key, fn, signal));
  }

  #assertOpen(): void {
    if (this.#closing) throw new StoreClosedError(this.description);
  }

  // Counts operations in progress, so close() can wait for them.
  async #track<T>(fn: () => Promise<T>): Promise<T> {
    this.#inFlight++;
    try {
      return await fn();
    } finally {
      if (--this.#inFlight === 0) this.#idle?.();
    }
  }

  async #retry<T>(
    operation: string,
    key: string | undefined,
    fn: (attempt: number) => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    try {
      return await withRetry(
        this.#policy,
        {
          classify: (e) => classifyS3Error(e),
          signal,
          onRetry: ({ attempt, delayMs, reason }) =>
            this.#log.warn('S3 request failed; retrying', {
              operation,
              key,
              bucket: this.#bucket,
              attempt,
              delayMs,
              reason,
            }),
        },
        this.#onRequest === undefined ? fn : this.#counted(operation, fn),
      );
    } catch (e) {
      if (e instanceof RetryExhausted) {
        if (e.lastError instanceof S3Error) throw e.lastError;
        throw translateS3Error(e.lastError, this.#target, operation, key, e.attempts);
      }
      throw e;
    }
  }

  #counted<T>(operation: string, fn: (attempt: number) => Promise<T>) {
    return async (attempt: number): Promise<T> => {
      try {
        const r = await fn(attempt);
        this.#onRequest!(operation, 'ok');
        return r;
      } catch (e) {
        this.#onRequest!(operation, String(statusOf(e) ?? 'network'));
        throw e;
      }
    };
  }

  async check(): Promise<void> {
    try {
      await this.#run('HeadBucket', undefined, () =>
        this.#client.send(new HeadBucketCommand({ Bucket: this.#bucket })),
      );
    } catch (e) {
      // HEAD answers have no body, so a missing bucket is a bare 404.
      if (e instanceof S3Error && e.failure.status === 404) {
        throw new S3NoSuchBucketError(this.#target, { ...e.failure, code: 'NoSuchBucket' });
      }
      throw e;
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    assertValidKey(key);
    return this.#run('HeadObject', key, async () => {
      try {
        const r = await this.#client.send(
          new HeadObjectCommand({ Bucket: this.#bucket, Key: key }),
        );
        return {
          key,
          size: r.ContentLength ?? 0,
          lastModified: r.LastModified ?? new Date(0),
          contentType: r.ContentType,
        };
      } catch (e) {
        if (isNotFound(e)) return undefined;
        throw e;
      }
    });
  }

  async get(key: string, opts: { signal?: AbortSignal } = {}): Promise<Buffer | undefined> {
    assertValidKey(key);
    return this.#run(
      'GetObject',
      key,
      async () => {
        try {
          const r = await this.#client.send(
            new GetObjectCommand({ Bucket: this.#bucket, Key: key }),
            { abortSignal: opts.signal },
          );
          // Read the body inside the retried function: a connection cut mid-body retries.
          const bytes = r.Body ? await r.Body.transformToByteArray() : new Uint8Array();
          return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        } catch (e) {
          if (codeOf(e) === 'NoSuchKey') return undefined;
          throw e;
        }
      },
      opts.signal,
    );
  }

  async getStream(key: string, opts: { signal?: AbortSignal } = {}): Promise<Readable | undefined> {
    assertValidKey(key);
    return this.#run(
      'GetObject',
      key,
      async () => {
        try {
          const r = await this.#client.send(
            new GetObjectCommand({ Bucket: this.#bucket, Key: key }),
            { abortSignal: opts.signal },
          );
          return r.Body === undefined ? Readable.from([]) : (r.Body as Readable);
        } catch (e) {
          if (codeOf(e) === 'NoSuchKey') return undefined;
          throw e;
        }
      },
      opts.signal,
    );
  }

  async put(key: string, body: Uint8Array | string, opts: PutOptions = {}): Promise<void> {
    assertValidKey(key);
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    await this.#putBytes(key, bytes, opts.contentType, opts.signal, opts.cacheControl);
  }

  #putBytes(
    key: string,
    body: Uint8Array,
    contentType: string | undefined,
    signal?: AbortSignal,
    cacheControl?: string,
  ) {
    return this.#run(
      'PutObject',
      key,
      () => this.#sendPut(key, body, contentType, signal, cacheControl),
      signal,
    );
  }

  #sendPut(
    key: string,
    body: Uint8Array,
    contentType: string | undefined,
    signal?: AbortSignal,
    cacheControl?: string,
  ) {
    return this.#client.send(
      new PutObjectCommand({
        Bucket: this.#bucket,
        Key: key,
        Body: body,
        ContentLength: body.length,
        ContentType: contentType,
        CacheControl: cacheControl,
      }),
      { abortSignal: signal },
    );
  }

  async upload(key: string, source: ByteSource, opts: UploadOptions = {}): Promise<UploadResult> {
    assertValidKey(key);
    this.#assertOpen();
    return this.#track(() => this.#upload(key, source, opts));
  }

  // Runs under #track: its requests use #retry directly, so a close() that began meanwhile
  // lets the upload finish rather than failing it halfway.
  async #upload(key: string, source: ByteSource, opts: UploadOptions): Promise<UploadResult> {
    const bucket = this.#bucket;
    const client = this.#client;
    const contentType = opts.contentType;
    const cacheControl = opts.cacheControl;
    const sink: PartSink = {
      putWhole: async (body, signal) => {
        await this.#retry(
          'PutObject',
          key,
          () => this.#sendPut(key, body, contentType, signal, cacheControl),
          signal,
        );
      },
      create: async (signal) => {
        const r = await this.#retry(
          'CreateMultipartUpload',
          key,
          () =>
            client.send(
              new CreateMultipartUploadCommand({
                Bucket: bucket,
                Key: key,
                ContentType: contentType,
                CacheControl: cacheControl,
              }),
              { abortSignal: signal },
            ),
          signal,
        );
        if (!r.UploadId) throw this.#protocolError('CreateMultipartUpload', key, 'no UploadId');
        return r.UploadId;
      },
      uploadPart: async (uploadId, partNumber, body, signal) => {
        const r = await this.#retry(
          'UploadPart',
          key,
          () =>
            client.send(
              new UploadPartCommand({
                Bucket: bucket,
                Key: key,
                UploadId: uploadId,
                PartNumber: partNumber,
                Body: body,
                ContentLength: body.length,
              }),
              { abortSignal: signal },
            ),
          signal,
        );
        if (!r.ETag) throw this.#protocolError('UploadPart', key, `no ETag for part ${partNumber}`);
        return r.ETag;
      },
      complete: (uploadId, parts, totalSize, signal) =>
        this.#complete(key, uploadId, parts, totalSize, signal),
      abort: (uploadId) => this.#abortUpload(key, uploadId),
    };
    return streamedUpload(source, sink, {
      key,
      budget: this.#budget,
      pool: this.#pool,
      plan: planParts({ sizeHint: opts.sizeHint, basePartSize: this.#partSize }),
      concurrency: this.#partConcurrency,
      signal: opts.signal,
      onProgress: opts.onProgress,
      onAbortFailed: (uploadId, error) =>
        this.#log.warn('could not abort a failed multipart upload; stale-upload cleanup will', {
          key,
          bucket,
          uploadId,
          error: error instanceof Error ? error.message : String(error),
        }),
    });
  }

  async #complete(
    key: string,
    uploadId: string,
    parts: CompletedPart[],
    totalSize: number,
    signal: AbortSignal,
  ): Promise<void> {
    await this.#retry(
      'CompleteMultipartUpload',
      key,
      async (attempt) => {
        try {
          await this.#client.send(
            new CompleteMultipartUploadCommand({
              Bucket: this.#bucket,
              Key: key,
              UploadId: uploadId,
              MultipartUpload: {
                Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })),
              },
            }),
            { abortSignal: signal },
          );
        } catch (e) {
          // An earlier attempt may have completed the upload and lost only the answer: then
          // the upload is gone and the object is there, whole.
          if (attempt > 1 && codeOf(e) === 'NoSuchUpload') {
            const r = await this.#client.send(
              new HeadObjectCommand({ Bucket: this.#bucket, Key: key }),
              { abortSignal: signal },
            );
            if (r.ContentLength === totalSize) return;
          }
          throw e;
        }
      },
      signal,
    );
  }

  #protocolError(operation: string, key: string, what: string): S3RequestError {
    return new S3RequestError(this.#target, {
      operation,
      key,
      status: undefined,
      code: 'InvalidResponse',
      message: `the server's answer had ${what}`,
      requestId: undefined,
      attempts: 1,
    });
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncIterable<ListedObject> {
    assertValidPrefix(prefix);
    let token: string | undefined;
    do {
      const page = await this.#run('ListObjectsV2', prefix || undefined, () =>
        this.#client.send(
          new ListObjectsV2Command({
            Bucket: this.#bucket,
            Prefix: prefix || undefined,
            Delimiter: opts.recursive === false ? '/' : undefined,
            ContinuationToken: token,
          }),
        ),
      );
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined) continue;
        yield { key: o.Key, size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0) };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
      if (page.IsTruncated && !token) {
        throw this.#protocolError(
          'ListObjectsV2',
          prefix,
          'IsTruncated without a continuation token',
        );
      }
    } while (token);
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    const unique = [...new Set(keys)];
    unique.forEach(assertValidKey);
    const failed: { key: string; reason: string }[] = [];
    let deleted = 0;
    for (let i = 0; i < unique.length; i += BATCH_DELETE_MAX) {
      const chunk = unique.slice(i, i + BATCH_DELETE_MAX);
      if (!this.#batchDeleteUnsupported) {
        try {
          const r = await this.#run('DeleteObjects', undefined, () =>
            this.#client.send(
              new DeleteObjectsCommand({
                Bucket: this.#bucket,
                Delete: { Objects: chunk.map((Key) => ({ Key })), Quiet: true },
              }),
            ),
          );
          const errs = (r.Errors ?? []).filter((x) => x.Code !== 'NoSuchKey');
          for (const x of errs) failed.push({ key: x.Key ?? '?', reason: x.Code ?? 'error' });
          deleted += chunk.length - errs.length;
          continue;
        } catch (e) {
          if (!(e instanceof S3Error) || !this.#rejectsBatchDelete(e)) throw e;
          this.#batchDeleteUnsupported = true;
          this.#log.warn('S3 server rejects batch delete (DeleteObjects); deleting one by one', {
            bucket: this.#bucket,
            status: e.failure.status,
            code: e.failure.code,
          });
        }
      }
      const r = await this.#deleteSingly(chunk);
      deleted += r.deleted;
      failed.push(...r.failed);
    }
    if (failed.length > 0) throw new StorageDeleteError(this.description, failed, deleted);
  }

  #rejectsBatchDelete(e: S3Error): boolean {
    const { status, code } = e.failure;
    return (
      status === 501 || status === 405 || code === 'NotImplemented' || code === 'MethodNotAllowed'
    );
  }

  async #deleteSingly(keys: string[]) {
    const failed: { key: string; reason: string }[] = [];
    let deleted = 0;
    let next = 0;
    let fatal: { error: unknown } | undefined;
    const worker = async () => {
      while (next < keys.length && !fatal) {
        const key = keys[next++]!;
        try {
          await this.#run('DeleteObject', key, async () => {
            try {
              await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: key }));
            } catch (e) {
              if (!isNotFound(e)) throw e;
            }
          });
          deleted++;
        } catch (e) {
          // Access and bucket errors fail every key alike; say so once, now.
          if (!(e instanceof S3Error) || e.code !== 'S3_REQUEST_FAILED') fatal ??= { error: e };
          else failed.push({ key, reason: String(e.failure.code ?? e.failure.status) });
        }
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(this.#deleteConcurrency, keys.length) }, worker),
    );
    if (fatal) throw fatal.error;
    return { deleted, failed };
  }

  async copy(from: string, to: string, opts: CopyOptions = {}): Promise<void> {
    assertValidKey(from);
    assertValidKey(to);
    let contentType = opts.contentType;
    // S3 refuses to copy an object onto itself unchanged, so a refresh replaces the
    // metadata with what it was (we keep no user metadata, only the content type).
    if (from === to && contentType === undefined) {
      const info = await this.head(from);
      contentType = info?.contentType ?? 'application/octet-stream';
    }
    await this.#run('CopyObject', from === to ? from : `${from} -> ${to}`, () =>
      this.#client.send(
        new CopyObjectCommand({
          Bucket: this.#bucket,
          Key: to,
          CopySource: copySource(this.#bucket, from),
          MetadataDirective: contentType === undefined ? 'COPY' : 'REPLACE',
          ContentType: contentType,
          CacheControl: contentType === undefined ? undefined : opts.cacheControl,
        }),
      ),
    );
  }

  async *listMultipartUploads(prefix = ''): AsyncIterable<PendingUpload> {
    assertValidPrefix(prefix);
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const page = await this.#run('ListMultipartUploads', prefix || undefined, () =>
        this.#client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.#bucket,
            Prefix: prefix || undefined,
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
        ),
      );
      for (const u of page.Uploads ?? []) {
        if (u.Key === undefined || u.UploadId === undefined) continue;
        yield { key: u.Key, uploadId: u.UploadId, initiated: u.Initiated };
      }
      if (!page.IsTruncated) return;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
      if (keyMarker === undefined) {
        throw this.#protocolError(
          'ListMultipartUploads',
          prefix,
          'IsTruncated without a NextKeyMarker',
        );
      }
    }
  }

  async abortMultipartUpload(key: string, uploadId: string): Promise<void> {
    assertValidKey(key);
    this.#assertOpen();
    await this.#track(() => this.#abortUpload(key, uploadId));
  }

  async #abortUpload(key: string, uploadId: string): Promise<void> {
    await this.#retry('AbortMultipartUpload', key, async () => {
      try {
        await this.#client.send(
          new AbortMultipartUploadCommand({ Bucket: this.#bucket, Key: key, UploadId: uploadId }),
        );
      } catch (e) {
        // Already gone (aborted, completed, or a retry of an abort whose answer was lost).
        if (codeOf(e) === 'NoSuchUpload' || isNotFound(e)) return;
        throw e;
      }
    });
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#idle = resolve));
      this.#client.destroy();
      this.#pool.trim();
    })();
    return this.#closing;
  }
}

export type { S3BlobStore as S3Store };

/** Validate options eagerly (errors say which and what is expected) and make the store. */
export function createS3Store(opts: S3StoreOptions): S3BlobStore {
  return new S3BlobStore(opts);
}
