/**
 * The BlobStore on S3-compatible storage (AWS S3, Garage, MinIO, Ceph RGW, R2, B2, ...).
 *
 * Memory bound: part buffers of all concurrent `upload`s of one store share one budget
 * (`memoryBudgetBytes`, default 128 MiB): buffers granted to parts plus idle pooled buffers
 * stay within max(memoryBudgetBytes, largest part), whatever the number of uploads; each
 * upload has at most `partConcurrency` parts in flight (default 4). Parts are 8 MiB up to
 * 7.8 GiB (see part-size.ts), so by default up to 16 parts are in flight across the store.
 * Not counted: one source chunk read ahead per upload, and the sockets' own buffers
 * (small: bodies are sent from the part buffers without copies).
 *
 * Every request goes through `withRetry` with our policy; every failure leaves as one of
 * the errors in errors.ts, naming the bucket, endpoint and region and never a secret.
 */
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
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
import { checkBucketName, checkRegion } from '../util/s3-rules.js';
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
import { checkExtraHeaders, type S3Credentials } from './s3-client.js';
import { credentialSource } from './s3-credentials.js';
import { S3Http, errorFromResponse, type S3HttpResponse } from './s3-http.js';
import { escapeXml, xmlBlocks, xmlRoot, xmlText } from './s3-xml.js';
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
  /**
   * Connections `check()` opens alongside its own request, so the first uploads find them
   * warm (default 8; 1 opens none besides the check's).
   */
  warmConnections?: number;
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

function dateOf(s: string | undefined): Date {
  const d = s === undefined ? NaN : Date.parse(s);
  return new Date(Number.isNaN(d) ? 0 : d);
}

/** CompleteMultipartUpload and CopyObject can fail after a 200: the body is an `<Error>`. */
function throwIfErrorBody(res: S3HttpResponse): S3HttpResponse {
  if (res.body.length > 0 && xmlRoot(res.body.toString('utf8')) === 'Error') {
    throw errorFromResponse(res);
  }
  return res;
}

class S3BlobStore implements BlobStore {
  readonly id: string;
  readonly description: string;
  readonly #http: S3Http;
  readonly #target: S3Target;
  readonly #bucket: string;
  readonly #policy: RetryPolicy;
  readonly #budget: MemoryBudget;
  readonly #pool: BufferPool;
  readonly #partSize: number;
  readonly #partConcurrency: number;
  readonly #deleteConcurrency: number;
  readonly #warmConnections: number;
  readonly #log: Logger;
  readonly #onRequest: S3StoreOptions['onRequest'];
  #batchDeleteUnsupported = false;
  #closing: Promise<void> | undefined;
  #inFlight = 0;
  #idle: (() => void) | undefined;

  constructor(opts: S3StoreOptions) {
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
    this.#warmConnections = checkInt('warmConnections', opts.warmConnections, 1, 256) ?? 8;
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
    this.#http = new S3Http({
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
    // The check is a round trip anyway: open the connections the uploads will use with it.
    if (!this.#closing) this.#http.warm(this.#warmConnections - 1);
    try {
      await this.#run('HeadBucket', undefined, () => this.#http.send({ method: 'HEAD' }));
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
        const r = await this.#http.send({ method: 'HEAD', key });
        return {
          key,
          size: Number(r.headers['content-length'] ?? 0),
          lastModified: dateOf(r.headers['last-modified']),
          contentType: r.headers['content-type'],
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
          // The body is read inside the retried function: a connection cut mid-body retries.
          return (await this.#http.send({ method: 'GET', key, signal: opts.signal })).body;
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
          const res = await this.#http.send({
            method: 'GET',
            key,
            signal: opts.signal,
            stream: true,
          });
          return res.stream ?? Readable.from([res.body]);
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
    const headers = objectHeaders(opts);
    await this.#run(
      'PutObject',
      key,
      () => this.#sendPut(key, bytes, headers, opts.signal),
      opts.signal,
    );
  }

  #sendPut(
    key: string,
    body: Uint8Array | readonly Uint8Array[],
    headers: Record<string, string>,
    signal?: AbortSignal,
  ) {
    return this.#http.send({ method: 'PUT', key, body, headers, signal });
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
    const http = this.#http;
    const headers = objectHeaders(opts);
    const sink: PartSink = {
      putWhole: async (chunks, _size, signal) => {
        await this.#retry(
          'PutObject',
          key,
          () => this.#sendPut(key, chunks, headers, signal),
          signal,
        );
      },
      create: async (signal) => {
        const r = await this.#retry(
          'CreateMultipartUpload',
          key,
          async () => {
            const res = await http.send({
              method: 'POST',
              key,
              query: [['uploads', '']],
              headers,
              signal,
            });
            return { UploadId: xmlText(res.body.toString('utf8'), 'UploadId') };
          },
          signal,
        );
        if (!r.UploadId) throw this.#protocolError('CreateMultipartUpload', key, 'no UploadId');
        return r.UploadId;
      },
      uploadPart: async (uploadId, partNumber, body, signal) => {
        const r = await this.#retry(
          'UploadPart',
          key,
          async () => {
            const res = await http.send({
              method: 'PUT',
              key,
              query: [
                ['partNumber', String(partNumber)],
                ['uploadId', uploadId],
              ],
              body,
              unsignedPayload: true,
              signal,
            });
            return { ETag: res.headers.etag };
          },
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
          const xml =
            '<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
            parts
              .map(
                (p) =>
                  `<Part><PartNumber>${p.partNumber}</PartNumber><ETag>${escapeXml(p.etag)}</ETag></Part>`,
              )
              .join('') +
            '</CompleteMultipartUpload>';
          const res = await this.#http.send({
            method: 'POST',
            key,
            query: [['uploadId', uploadId]],
            headers: { 'content-type': 'application/xml' },
            body: Buffer.from(xml),
            signal,
          });
          throwIfErrorBody(res);
        } catch (e) {
          // An earlier attempt may have completed the upload and lost only the answer: then
          // the upload is gone and the object is there, whole.
          if (attempt > 1 && codeOf(e) === 'NoSuchUpload') {
            const r = await this.#http.send({ method: 'HEAD', key, signal });
            if (Number(r.headers['content-length']) === totalSize) return;
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
      const query: [string, string][] = [['list-type', '2']];
      if (prefix) query.push(['prefix', prefix]);
      if (opts.recursive === false) query.push(['delimiter', '/']);
      if (token !== undefined) query.push(['continuation-token', token]);
      const xml = await this.#run('ListObjectsV2', prefix || undefined, async () =>
        (await this.#http.send({ method: 'GET', query })).body.toString('utf8'),
      );
      for (const o of xmlBlocks(xml, 'Contents')) {
        const k = xmlText(o, 'Key');
        if (k === undefined) continue;
        yield {
          key: k,
          size: Number(xmlText(o, 'Size') ?? 0),
          lastModified: dateOf(xmlText(o, 'LastModified')),
        };
      }
      const truncated = xmlText(xml, 'IsTruncated') === 'true';
      token = truncated ? xmlText(xml, 'NextContinuationToken') : undefined;
      if (truncated && !token) {
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
          const xml = await this.#run('DeleteObjects', undefined, () => this.#deleteBatch(chunk));
          const errs = xmlBlocks(xml, 'Error')
            .map((x) => ({ key: xmlText(x, 'Key'), code: xmlText(x, 'Code') }))
            .filter((x) => x.code !== 'NoSuchKey');
          for (const x of errs) failed.push({ key: x.key ?? '?', reason: x.code ?? 'error' });
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

  // Some servers (older MinIO, B2) honour only Content-MD5 on DeleteObjects; it is cheap on
  // a small XML body, so it is always sent, signed.
  async #deleteBatch(keys: string[]): Promise<string> {
    const body = Buffer.from(
      '<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet>' +
        keys.map((k) => `<Object><Key>${escapeXml(k)}</Key></Object>`).join('') +
        '</Delete>',
    );
    const res = await this.#http.send({
      method: 'POST',
      query: [['delete', '']],
      headers: {
        'content-type': 'application/xml',
        'content-md5': createHash('md5').update(body).digest('base64'),
      },
      body,
    });
    return res.body.toString('utf8');
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
              await this.#http.send({ method: 'DELETE', key });
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
      this.#http
        .send({
          method: 'PUT',
          key: to,
          headers: {
            'x-amz-copy-source': copySource(this.#bucket, from),
            'x-amz-metadata-directive': contentType === undefined ? 'COPY' : 'REPLACE',
            ...(contentType === undefined ? {} : { 'content-type': contentType }),
            ...(contentType === undefined || opts.cacheControl === undefined
              ? {}
              : { 'cache-control': opts.cacheControl }),
          },
        })
        .then(throwIfErrorBody),
    );
  }

  async *listMultipartUploads(prefix = ''): AsyncIterable<PendingUpload> {
    assertValidPrefix(prefix);
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const query: [string, string][] = [['uploads', '']];
      if (prefix) query.push(['prefix', prefix]);
      if (keyMarker !== undefined) query.push(['key-marker', keyMarker]);
      if (uploadIdMarker !== undefined) query.push(['upload-id-marker', uploadIdMarker]);
      const xml = await this.#run('ListMultipartUploads', prefix || undefined, async () =>
        (await this.#http.send({ method: 'GET', query })).body.toString('utf8'),
      );
      for (const u of xmlBlocks(xml, 'Upload')) {
        const k = xmlText(u, 'Key');
        const uploadId = xmlText(u, 'UploadId');
        if (k === undefined || uploadId === undefined) continue;
        const initiated = xmlText(u, 'Initiated');
        yield { key: k, uploadId, initiated: initiated ? dateOf(initiated) : undefined };
      }
      if (xmlText(xml, 'IsTruncated') !== 'true') return;
      keyMarker = xmlText(xml, 'NextKeyMarker') || undefined;
      uploadIdMarker = xmlText(xml, 'NextUploadIdMarker') || undefined;
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
        await this.#http.send({ method: 'DELETE', key, query: [['uploadId', uploadId]] });
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
      this.#http.destroy();
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

/** The headers an object is stored with (S3 keeps them and serves them back on GET). */
function objectHeaders(o: {
  contentType?: string;
  contentEncoding?: string;
  cacheControl?: string;
}): Record<string, string> {
  const h: Record<string, string> = {};
  if (o.contentType !== undefined) h['content-type'] = o.contentType;
  if (o.contentEncoding !== undefined) h['content-encoding'] = o.contentEncoding;
  if (o.cacheControl !== undefined) h['cache-control'] = o.cacheControl;
  return h;
}
