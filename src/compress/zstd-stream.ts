/**
 * The main-thread side of zstd compression: a Duplex that copies input into fixed-size
 * batch buffers, hands each full batch to a worker session (by transfer: the worker sends
 * the buffer back for reuse), and pushes the compressed bytes back out.
 *
 * Flow control is by credit: at most `maxInflight` batches are at the worker, and none
 * is sent while the readable side is full, so a slow consumer stops the producer
 * (write() returns false) instead of growing memory. Bytes one stream holds are bounded
 * by about
 *   (maxInflight + 1) x batchBytes of input + the largest chunk written
 *   + readableHighWaterMark + one batch of output,
 * plus its zstd context in the worker (a few MiB at level 3).
 */
import { Duplex } from 'node:stream';
import type { ZstdPool, ZstdSession } from './zstd-pool.js';
import {
  digestsFromWire,
  inputMismatch,
  oversize,
  type CompressionDigests,
  type InputExpectation,
  type WireDigests,
} from './digests.js';

export interface ZstdStreamOptions {
  /** Batches at the worker at once: 2 keeps it busy while we handle a reply. */
  maxInflight: number;
  /** Have the worker hash input and output (see `digests()`). */
  digests?: boolean;
  /** Error instead of ending when the input differs (implies `digests`). */
  expectInput?: InputExpectation;
}

type Callback = (err?: Error | null) => void;

interface Batch {
  buf: Buffer;
  len: number;
}

export class ZstdCompressStream extends Duplex {
  private session: ZstdSession | undefined;
  /** The batch being filled. */
  private current: Batch | undefined;
  /** Full batches waiting for credit. */
  private ready: Batch[] = [];
  private readyBytes = 0;
  private readonly inflightSizes: number[] = [];
  private inflightBytes = 0;
  private readBlocked = false;
  private waitingWrite: Callback | undefined;
  private finalCb: Callback | undefined;
  private endSent = false;
  private finished = false;
  private bytesIn = 0;
  private bytesOut = 0;
  private finalDigests: CompressionDigests | undefined;

  constructor(
    private readonly pool: ZstdPool,
    private readonly level: number,
    private readonly opts: ZstdStreamOptions,
  ) {
    super({
      readableHighWaterMark: pool.batchBytes,
      writableHighWaterMark: pool.batchBytes,
    });
  }

  /** sha256 and sizes of input and output, once the stream has ended (with `digests`). */
  digests(): CompressionDigests | undefined {
    return this.finalDigests;
  }

  /** Bytes accepted and produced, and input bytes held here or at the worker. */
  stats(): { bytesIn: number; bytesOut: number; pendingBytes: number; inflightBytes: number } {
    return {
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      pendingBytes: this.readyBytes + (this.current?.len ?? 0),
      inflightBytes: this.inflightBytes,
    };
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: Callback): void {
    this.accept(chunk);
    const tooBig = oversize(this.bytesIn, this.opts.expectInput);
    if (tooBig) cb(tooBig);
    else this.admit(cb);
  }

  override _writev(chunks: { chunk: Buffer }[], cb: Callback): void {
    for (const c of chunks) this.accept(c.chunk);
    const tooBig = oversize(this.bytesIn, this.opts.expectInput);
    if (tooBig) cb(tooBig);
    else this.admit(cb);
  }

  override _final(cb: Callback): void {
    this.finalCb = cb;
    this.pump();
  }

  override _read(): void {
    this.readBlocked = false;
    this.pump();
  }

  override _destroy(err: Error | null, cb: Callback): void {
    // Frees the worker's session at once; output still in flight is dropped.
    this.session?.close();
    for (const b of this.ready) this.pool.giveBuffer(b.buf.buffer as ArrayBuffer);
    if (this.current !== undefined) this.pool.giveBuffer(this.current.buf.buffer as ArrayBuffer);
    this.ready = [];
    this.readyBytes = 0;
    this.current = undefined;
    this.waitingWrite = undefined;
    this.finalCb = undefined;
    cb(err);
  }

  /**
   * Copy the chunk into batch buffers now: the caller's chunk is often a view of a larger
   * shared buffer (socket reads, Buffer's pool) that must be neither transferred nor kept.
   */
  private accept(chunk: Buffer): void {
    this.bytesIn += chunk.length;
    while (chunk.length > 0) {
      const cur = (this.current ??= { buf: this.pool.takeBuffer(), len: 0 });
      const n = Math.min(chunk.length, cur.buf.length - cur.len);
      chunk.copy(cur.buf, cur.len, 0, n);
      cur.len += n;
      chunk = chunk.subarray(n);
      if (cur.len === cur.buf.length) {
        this.ready.push(cur);
        this.readyBytes += cur.len;
        this.current = undefined;
      }
    }
  }

  /** Take more input now, or once the full batches have gone to the worker. */
  private admit(cb: Callback): void {
    this.pump();
    if (this.ready.length === 0) cb();
    else this.waitingWrite = cb;
  }

  private canSend(): boolean {
    return (
      !this.destroyed && this.inflightSizes.length < this.opts.maxInflight && !this.readBlocked
    );
  }

  private pump(): void {
    while (this.ready.length > 0 && this.canSend()) {
      const b = this.ready.shift() as Batch;
      this.readyBytes -= b.len;
      this.send(b, false);
    }
    if (this.finalCb !== undefined && !this.endSent && this.ready.length === 0 && this.canSend()) {
      const b = this.current;
      this.current = undefined;
      this.send(b, true);
    }
    if (this.waitingWrite !== undefined && this.ready.length === 0) {
      const cb = this.waitingWrite;
      this.waitingWrite = undefined;
      cb();
    }
  }

  private send(b: Batch | undefined, end: boolean): void {
    this.session ??= this.pool.open(
      this.level,
      {
        onOutput: (out, ended, d) => this.onOutput(out, ended, d),
        onError: (err) => this.destroy(err),
      },
      this.opts.digests === true || this.opts.expectInput !== undefined,
    );
    const size = b?.len ?? 0;
    this.inflightSizes.push(size);
    this.inflightBytes += size;
    if (end) this.endSent = true;
    this.session.send(b === undefined ? undefined : b.buf.subarray(0, b.len), end);
  }

  private onOutput(out: Buffer[], ended: boolean, d?: WireDigests): void {
    if (this.destroyed || this.finished) return;
    this.inflightBytes -= this.inflightSizes.shift() ?? 0;
    if (ended && d !== undefined) {
      const digests = digestsFromWire(d);
      // Checked before the last bytes go out and before 'end': a consumer that completes
      // only on a clean end never completes with input that was not what it expected.
      const bad = inputMismatch(digests, this.opts.expectInput);
      if (bad) {
        this.destroy(bad);
        return;
      }
      this.finalDigests = digests;
    }
    for (const b of out) {
      this.bytesOut += b.length;
      if (!this.push(b)) this.readBlocked = true;
    }
    if (ended) {
      this.finished = true;
      this.push(null);
      const cb = this.finalCb;
      this.finalCb = undefined;
      cb?.();
      return;
    }
    this.pump();
  }
}
