/**
 * The BlobStore on S3-compatible storage (AWS S3, Garage, MinIO, Ceph RGW, R2, B2, ...):
 * the adapter from the storage port to S3 requests. Its parts: options (`s3-options.ts`),
 * the request runner with retries and drain (`s3-requests.ts`), multipart upload
 * (`s3-multipart.ts`), listings (`s3-listing.ts`), deletes (`s3-delete.ts`), and the lean
 * HTTP path under them all (`s3-http.ts`).
 *
 * Memory bound: part buffers of all concurrent `upload`s of one store share one budget
 * (`memoryBudgetBytes`, default 128 MiB): buffers granted to parts plus idle pooled buffers
 * stay within max(memoryBudgetBytes, largest part), whatever the number of uploads; each
 * upload has at most `partConcurrency` parts in flight (default 4). Parts are 8 MiB up to
 * 7.8 GiB (see part-size.ts), so by default up to 16 parts are in flight across the store.
 * Not counted: one source chunk read ahead per upload, and the sockets' own buffers
 * (small: bodies are sent from the part buffers without copies).
 */
import { Readable } from 'node:stream';
import type { Logger } from '../util/log.js';
import { S3Error, S3NoSuchBucketError } from './errors.js';
import { assertValidKey, assertValidPrefix } from './keys.js';
import { BufferPool, MemoryBudget } from './memory-budget.js';
import { planParts } from './part-size.js';
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
import { S3Deleter } from './s3-delete.js';
import { codeOf } from './s3-errors.js';
import type { S3HttpResponse } from './s3-http.js';
import { s3CacheIdentity } from './s3-identity.js';
import { listObjects, listPendingUploads } from './s3-listing.js';
import { abortUpload, multipartSink, putObjectRequest } from './s3-multipart.js';
import { resolveS3Options, type S3StoreOptions } from './s3-options.js';
import { S3Requests, dateOf, isNotFound, throwIfErrorBody } from './s3-requests.js';
import { streamedUpload } from './streamed-upload.js';

export type { S3StoreOptions } from './s3-options.js';

export interface MemoryUse {
  inUse: number;
  peak: number;
  budget: number;
  idle: number;
  allocations: number;
}

/** `bucket/key` for x-amz-copy-source, each segment URL-encoded, slashes kept. */
function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

class S3BlobStore implements BlobStore {
  readonly id: string;
  readonly description: string;
  readonly #req: S3Requests;
  readonly #deleter: S3Deleter;
  readonly #bucket: string;
  readonly #budget: MemoryBudget;
  readonly #pool: BufferPool;
  readonly #partSize: number;
  readonly #partConcurrency: number;
  readonly #warmConnections: number;
  readonly #log: Logger;

  constructor(opts: S3StoreOptions) {
    const s = resolveS3Options(opts);
    ({ id: this.id, description: this.description } = s3CacheIdentity(s.target));
    this.#bucket = s.target.bucket;
    this.#partSize = s.partSize;
    this.#partConcurrency = s.partConcurrency;
    this.#warmConnections = s.warmConnections;
    this.#budget = new MemoryBudget(s.memoryBudgetBytes);
    this.#pool = new BufferPool(this.#budget);
    this.#log = s.logger;
    this.#req = new S3Requests(s, this.description);
    this.#deleter = new S3Deleter(this.#req, s.deleteConcurrency);
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

  // Once per store: a service pushing batch after batch keeps its connections alive, and
  // HEADs sent on ones already open would be requests for nothing.
  #warmed = false;

  warm(): void {
    if (this.#warmed || this.#req.closing) return;
    this.#warmed = true;
    this.#req.http.warm(this.#warmConnections - 1);
  }

  async check(): Promise<void> {
    try {
      await this.#req.run('HeadBucket', undefined, () => this.#req.http.send({ method: 'HEAD' }));
    } catch (e) {
      // HEAD answers have no body, so a missing bucket is a bare 404.
      if (e instanceof S3Error && e.failure.status === 404) {
        throw new S3NoSuchBucketError(this.#req.target, { ...e.failure, code: 'NoSuchBucket' });
      }
      throw e;
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    assertValidKey(key);
    return this.#req.run('HeadObject', key, async () => {
      try {
        const r = await this.#req.http.send({ method: 'HEAD', key });
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
    // The body is read inside the retried function: a connection cut mid-body retries.
    const send = () => this.#req.http.send({ method: 'GET', key, signal: opts.signal });
    return this.#req.run('GetObject', key, () => unlessNoSuchKey(send, (r) => r.body), opts.signal);
  }

  async getStream(key: string, opts: { signal?: AbortSignal } = {}): Promise<Readable | undefined> {
    assertValidKey(key);
    const send = () =>
      this.#req.http.send({ method: 'GET', key, signal: opts.signal, stream: true });
    return this.#req.run(
      'GetObject',
      key,
      () => unlessNoSuchKey(send, (r) => r.stream ?? Readable.from([r.body])),
      opts.signal,
    );
  }

  async put(key: string, body: Uint8Array | string, opts: PutOptions = {}): Promise<void> {
    assertValidKey(key);
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    const request = putObjectRequest(key, bytes, objectHeaders(opts), opts.signal);
    await this.#req.run('PutObject', key, () => this.#req.http.send(request), opts.signal);
  }

  async upload(key: string, source: ByteSource, opts: UploadOptions = {}): Promise<UploadResult> {
    assertValidKey(key);
    this.#req.assertOpen();
    // Under track, the upload's requests retry without the open check: a close() that
    // began meanwhile lets the upload finish rather than failing it halfway.
    return this.#req.track(() =>
      streamedUpload(source, multipartSink(this.#req, key, objectHeaders(opts)), {
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
            bucket: this.#bucket,
            uploadId,
            error: error instanceof Error ? error.message : String(error),
          }),
      }),
    );
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncIterable<ListedObject> {
    assertValidPrefix(prefix);
    yield* listObjects(this.#req, prefix, opts);
  }

  deleteMany(keys: readonly string[]): Promise<void> {
    return this.#deleter.deleteMany(keys);
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
    await this.#req.run('CopyObject', from === to ? from : `${from} -> ${to}`, () =>
      this.#req.http
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
    yield* listPendingUploads(this.#req, prefix);
  }

  async abortMultipartUpload(key: string, uploadId: string): Promise<void> {
    assertValidKey(key);
    this.#req.assertOpen();
    await this.#req.track(() => abortUpload(this.#req, key, uploadId));
  }

  async close(): Promise<void> {
    await this.#req.close();
    this.#pool.trim();
  }
}

export type { S3BlobStore as S3Store };

/** Validate options eagerly (errors say which and what is expected) and make the store. */
export function createS3Store(opts: S3StoreOptions): S3BlobStore {
  return new S3BlobStore(opts);
}

/** A GET's answer through `pick`, or `undefined` when the key does not exist. */
async function unlessNoSuchKey<T>(
  send: () => Promise<S3HttpResponse>,
  pick: (r: S3HttpResponse) => T,
): Promise<T | undefined> {
  try {
    return pick(await send());
  } catch (e) {
    if (codeOf(e) === 'NoSuchKey') return undefined;
    throw e;
  }
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
