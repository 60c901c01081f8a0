/**
 * The main-thread side of zstd compression: a Duplex that batches input, hands it to a
 * worker session, and pushes the compressed bytes back out. Flow control is by credit:
 * at most `maxInflight` batches are at the worker, and no batch is sent while the
 * readable side is full, so a slow consumer stops the producer (write() returns false)
 * instead of growing memory. Bytes held per stream are bounded by about
 *   batchBytes (pending) + maxInflight x batchBytes (at the worker)
 *   + readableHighWaterMark + one batch of output,
 * plus the worker's zstd context (a few MiB at level 3).
 */
import { Duplex } from 'node:stream';
import type { ZstdPool, ZstdSession } from './zstd-pool.js';
import type { ZstdSessionParams } from './zstd-protocol.js';

export interface ZstdStreamOptions {
  /** Input is sent to the worker in batches of about this many bytes. */
  batchBytes: number;
  /** Batches at the worker at once: 2 keeps it busy while we handle a reply. */
  maxInflight: number;
}

type Callback = (err?: Error | null) => void;

export class ZstdCompressStream extends Duplex {
  private session: ZstdSession | undefined;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private inflight = 0;
  private inflightBytes = 0;
  private readonly inflightSizes: number[] = [];
  private readBlocked = false;
  private waitingWrite: Callback | undefined;
  private finalCb: Callback | undefined;
  private endSent = false;
  private finished = false;
  private bytesIn = 0;
  private bytesOut = 0;

  constructor(
    private readonly pool: ZstdPool,
    private readonly params: ZstdSessionParams,
    private readonly opts: ZstdStreamOptions,
  ) {
    super({
      readableHighWaterMark: opts.batchBytes,
      writableHighWaterMark: opts.batchBytes,
    });
  }

  /** Bytes accepted, bytes produced, and bytes this stream holds outside Node's buffers. */
  stats(): { bytesIn: number; bytesOut: number; pendingBytes: number; inflightBytes: number } {
    return {
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      pendingBytes: this.pendingBytes,
      inflightBytes: this.inflightBytes,
    };
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: Callback): void {
    this.accept(chunk);
    this.admit(cb);
  }

  override _writev(chunks: { chunk: Buffer }[], cb: Callback): void {
    for (const c of chunks) this.accept(c.chunk);
    this.admit(cb);
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
    this.pending = [];
    this.pendingBytes = 0;
    this.waitingWrite = undefined;
    this.finalCb = undefined;
    cb(err);
  }

  private accept(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.bytesIn += chunk.length;
  }

  /** Take more input now, or once a full batch has gone to the worker. */
  private admit(cb: Callback): void {
    if (this.pendingBytes < this.opts.batchBytes) {
      cb();
      return;
    }
    this.waitingWrite = cb;
    this.pump();
  }

  private canSend(): boolean {
    return !this.destroyed && this.inflight < this.opts.maxInflight && !this.readBlocked;
  }

  private pump(): void {
    if (this.pendingBytes >= this.opts.batchBytes && this.canSend()) this.send(false);
    if (this.finalCb !== undefined && !this.endSent && this.canSend()) this.send(true);
    if (this.waitingWrite !== undefined && this.pendingBytes < this.opts.batchBytes) {
      const cb = this.waitingWrite;
      this.waitingWrite = undefined;
      cb();
    }
  }

  private send(end: boolean): void {
    let chunk: Buffer | undefined;
    if (this.pendingBytes > 0) {
      // Copy into a buffer of our own: callers' chunks are often views of larger shared
      // buffers (socket reads, Buffer's pool), which must neither be detached by a
      // transfer nor cloned whole.
      chunk = Buffer.allocUnsafeSlow(this.pendingBytes);
      let at = 0;
      for (const p of this.pending) {
        p.copy(chunk, at);
        at += p.length;
      }
    }
    const size = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    this.session ??= this.pool.open(this.params, {
      onOutput: (out, ended) => this.onOutput(out, ended),
      onError: (err) => this.destroy(err),
    });
    this.inflight++;
    this.inflightBytes += size;
    this.inflightSizes.push(size);
    if (end) this.endSent = true;
    this.session.send(chunk, end);
  }

  private onOutput(out: Buffer[], ended: boolean): void {
    if (this.destroyed || this.finished) return;
    this.inflight--;
    this.inflightBytes -= this.inflightSizes.shift() ?? 0;
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
