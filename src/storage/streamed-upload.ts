/**
 * Streaming an object of unknown length with bounded memory, over any backend that can
 * store parts (`PartSink`; the S3 store implements it with multipart uploads).
 *
 * One reader cuts the source into parts of a known length (sizes from `part-size.ts`), each
 * in a buffer reserved from the store's shared `MemoryBudget` before it is allocated;
 * `concurrency` workers pull parts from that one reader and send them. So part buffers hold
 * at most max(budget, largest part) bytes across every upload of the store, plus, per
 * upload, one source chunk read ahead (the source's own memory). A body that fits in the
 * first part goes as a single PUT, sent from the source's own chunks without a copy (most
 * NARs are small, and copying each into one buffer cost more than signing and sending it);
 * the first part is gathered by reference under its lease, and copied into a part buffer
 * only when the body turns out to need more parts. On any failure the reader stops, every in-flight part
 * is awaited (an abort racing a part upload can leave that part behind on some servers),
 * and only then is the multipart upload aborted.
 */
import { releaseNow } from '../util/releasable-buffers.js';
import type { BufferPool, MemoryBudget } from './memory-budget.js';
import { partSize, type PartPlan } from './part-size.js';
import { UploadAbortedError } from './errors.js';
import type { ByteSource, UploadResult } from './port.js';

export interface CompletedPart {
  partNumber: number;
  etag: string;
}

/** What a backend must do for `streamedUpload`. Each call retries on its own as it sees fit. */
export interface PartSink {
  /** The whole body, as the source's chunks in order. */
  putWhole(body: readonly Buffer[], size: number, signal: AbortSignal): Promise<void>;
  create(signal: AbortSignal): Promise<string>;
  uploadPart(
    uploadId: string,
    partNumber: number,
    body: Buffer,
    signal: AbortSignal,
  ): Promise<string>;
  complete(
    uploadId: string,
    parts: CompletedPart[],
    totalSize: number,
    signal: AbortSignal,
  ): Promise<void>;
  /** Remove the multipart upload and its parts. Called with no part upload in flight. */
  abort(uploadId: string): Promise<void>;
}

export interface StreamedUploadOptions {
  key: string;
  budget: MemoryBudget;
  /** Reuse part buffers across parts and uploads (the store's pool). */
  pool?: BufferPool;
  plan: PartPlan;
  /** Parts of this upload in flight at once. */
  concurrency: number;
  signal?: AbortSignal;
  onProgress?: (bytesStored: number) => void;
  /** The abort request itself failed: the upload is left for stale-upload cleanup. */
  onAbortFailed?: (uploadId: string, error: unknown) => void;
}

interface Part {
  number: number;
  body: Buffer;
  /** The first part of a body that ends within it: the source's chunks, not copied. */
  chunks?: Buffer[];
  /** Known only for the first part: whether the source ended inside it. */
  last: boolean;
  /** Give the part's memory back (budget, then buffer pool). Once, when it is stored or dropped. */
  release(): void;
}

/** Cuts a source into parts; `next()` calls are serialized so workers can share it. */
class PartReader {
  readonly #it: AsyncIterator<Uint8Array | string>;
  #pending: Uint8Array | undefined;
  #ended = false;
  #number = 1;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(
    source: ByteSource,
    private readonly budget: MemoryBudget,
    private readonly pool: BufferPool | undefined,
    private readonly plan: PartPlan,
    private readonly signal: AbortSignal,
  ) {
    this.#it = (source as AsyncIterable<Uint8Array | string>)[Symbol.asyncIterator]();
  }

  next(): Promise<Part | undefined> {
    const p = this.#queue.then(() => this.#read());
    this.#queue = p.catch(() => {});
    return p;
  }

  /** Let go of the source iterator (for non-stream iterables; streams are destroyed). */
  close(): void {
    void Promise.resolve(this.#it.return?.()).catch(() => {});
  }

  async #pull(): Promise<Uint8Array | undefined> {
    while (!this.#ended) {
      const r = await this.#it.next();
      if (r.done) {
        this.#ended = true;
        return undefined;
      }
      const chunk = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
      if (chunk.length > 0) return chunk;
    }
    return undefined;
  }

  async #read(): Promise<Part | undefined> {
    const n = this.#number;
    if (this.signal.aborted) throw this.signal.reason;
    if (this.#pending === undefined) {
      this.#pending = await this.#pull();
      // An empty source is still an object: part 1, empty.
      if (this.#pending === undefined && n > 1) return undefined;
    }
    const size = partSize(n, this.plan);
    const lease = await this.budget.acquire(size, this.signal);
    if (n === 1) return this.#readFirst(size, lease);
    return this.#readInto(n, size, lease);
  }

  // The first part by reference: a single PUT sends the chunks as they are.
  async #readFirst(size: number, lease: Lease): Promise<Part> {
    const chunks: Buffer[] = [];
    let filled = 0;
    try {
      while (filled < size) {
        if (this.#pending === undefined) {
          this.#pending = await this.#pull();
          if (this.#pending === undefined) break;
        }
        const p = this.#pending;
        const take = Math.min(size - filled, p.length);
        chunks.push(asBuffer(take < p.length ? p.subarray(0, take) : p));
        filled += take;
        this.#pending = take < p.length ? p.subarray(take) : undefined;
      }
      if (this.#pending === undefined) this.#pending = await this.#pull();
    } catch (e) {
      lease.release();
      throw e;
    }
    const last = this.#pending === undefined && this.#ended;
    this.#number++;
    if (last) {
      lease.shrink(filled);
      const release = once(() => lease.release());
      return { number: 1, body: EMPTY, chunks, last, release };
    }
    // More parts follow: the first goes into a part buffer like the others.
    const buf = this.pool ? this.pool.take(size) : Buffer.allocUnsafeSlow(size);
    let at = 0;
    for (const c of chunks) {
      buf.set(c, at);
      at += c.length;
      // Copied: its memory can go now, unless the rest of it is still to be read.
      if (this.#pending === undefined || c.buffer !== this.#pending.buffer) releaseNow(c);
    }
    const giveBack = once(() => {
      this.pool?.give(buf);
      lease.release();
    });
    return { number: 1, body: buf.subarray(0, filled), last, release: giveBack };
  }

  async #readInto(n: number, size: number, lease: Lease): Promise<Part> {
    const buf = this.pool ? this.pool.take(size) : Buffer.allocUnsafeSlow(size);
    // Buffer first, then bytes: whoever the release lets in can take the buffer.
    const giveBack = () => {
      this.pool?.give(buf);
      lease.release();
    };
    try {
      let filled = 0;
      while (filled < size) {
        if (this.#pending === undefined) {
          this.#pending = await this.#pull();
          if (this.#pending === undefined) break;
        }
        const take = Math.min(size - filled, this.#pending.length);
        buf.set(this.#pending.subarray(0, take), filled);
        filled += take;
        if (take < this.#pending.length) this.#pending = this.#pending.subarray(take);
        else {
          // Copied whole: its memory can go now rather than at the next collection.
          releaseNow(this.#pending);
          this.#pending = undefined;
        }
      }
      const last = this.#pending === undefined && this.#ended;
      this.#number++;
      if (filled === size || filled > size / 4) {
        // Full, or a last part worth its buffer: send a view, keep the whole lease.
        return { number: n, body: buf.subarray(0, filled), last, release: once(giveBack) };
      }
      // A small last part is copied out so the part buffer and most of its lease are free
      // again while it is sent.
      const body = Buffer.from(buf.subarray(0, filled));
      this.pool?.give(buf);
      lease.shrink(filled);
      return { number: n, body, last, release: once(() => lease.release()) };
    } catch (e) {
      giveBack();
      throw e;
    }
  }
}

type Lease = Awaited<ReturnType<MemoryBudget['acquire']>>;

const EMPTY = Buffer.alloc(0);

function asBuffer(c: Uint8Array): Buffer {
  return Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (!done) {
      done = true;
      fn();
    }
  };
}

function destroySource(source: ByteSource, reader: PartReader): void {
  const s = source as { destroy?: () => void };
  if (typeof s.destroy === 'function') s.destroy();
  else reader.close();
}

export async function streamedUpload(
  source: ByteSource,
  sink: PartSink,
  opts: StreamedUploadOptions,
): Promise<UploadResult> {
  // Aborts budget waits and requests in flight as soon as anything fails.
  const ctrl = new AbortController();
  let failure: { error: unknown } | undefined;
  const reader = new PartReader(source, opts.budget, opts.pool, opts.plan, ctrl.signal);
  const fail = (error: unknown) => {
    if (failure) return;
    failure = { error };
    ctrl.abort(error);
    // Unblocks a reader waiting on a stalled source; the caller's pipeline stops too.
    destroySource(source, reader);
  };
  const onAbort = () => fail(new UploadAbortedError(opts.key));
  if (opts.signal?.aborted) onAbort();
  else opts.signal?.addEventListener('abort', onAbort, { once: true });

  try {
    let first: Part | undefined;
    try {
      first = await reader.next();
    } catch (e) {
      fail(e);
    }
    if (failure || first === undefined) throw failure ? failure.error : new Error('no first part');

    if (first.chunks) {
      const size = first.chunks.reduce((n, c) => n + c.length, 0);
      try {
        await sink.putWhole(first.chunks, size, ctrl.signal);
      } catch (e) {
        fail(e);
        throw failure!.error;
      } finally {
        first.release();
      }
      // Sent and answered: their memory can go now rather than at the next collection. (A
      // failed PUT leaves them to the collector: a write cut short may still hold them.)
      for (const c of first.chunks) releaseNow(c);
      opts.onProgress?.(size);
      return { size, parts: 1, multipart: false };
    }

    let uploadId: string;
    try {
      uploadId = await sink.create(ctrl.signal);
    } catch (e) {
      first.release();
      fail(e);
      throw failure!.error;
    }

    const done: CompletedPart[] = [];
    let stored = 0;
    const send = async (part: Part) => {
      try {
        if (failure) return;
        const etag = await sink.uploadPart(uploadId, part.number, part.body, ctrl.signal);
        done.push({ partNumber: part.number, etag });
        stored += part.body.length;
        opts.onProgress?.(stored);
      } catch (e) {
        fail(e);
      } finally {
        part.release();
      }
    };
    const worker = async (initial?: Part) => {
      if (initial) await send(initial);
      while (!failure) {
        let part: Part | undefined;
        try {
          part = await reader.next();
        } catch (e) {
          fail(e);
          return;
        }
        if (!part) return;
        await send(part);
      }
    };
    const workers = [worker(first)];
    for (let i = 1; i < opts.concurrency; i++) workers.push(worker());
    // Every worker has settled after this: no part upload is in flight.
    await Promise.all(workers);

    if (!failure) {
      done.sort((a, b) => a.partNumber - b.partNumber);
      try {
        await sink.complete(uploadId, done, stored, ctrl.signal);
        return { size: stored, parts: done.length, multipart: true };
      } catch (e) {
        fail(e);
      }
    }
    try {
      await sink.abort(uploadId);
    } catch (e) {
      opts.onAbortFailed?.(uploadId, e);
    }
    throw failure!.error;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
}
