/**
 * One zstd frame, with Node's own zstd (node:zlib, Node >= 22.15): no native module of ours.
 * For worker threads (the zstd pool's and the NAR packers'), which own the per-NAR state;
 * zlib runs each streamed chunk on libuv's thread pool, so a thread can serve several NARs
 * at once.
 *
 * A frame fed by write() and end() streams; input given whole to end() (a NAR the packer
 * gathered, or one that is one chunk long) is compressed in one call instead, so zstd
 * knows its size: it sizes its tables to it and records it in the frame header. Output
 * comes as buffers the caller owns (zlib's own output buffers once zlib is done with them;
 * small ones copied), so they can be transferred.
 *
 * A thread that compresses many whole inputs passes a `WholeFrameContexts`: each input is
 * then one frame written synchronously to a zstd context kept from the last one, instead
 * of a context made and dropped per call. A dropped context's memory (and a one-shot
 * call's output buffers) is freed only when the garbage collector next runs, so every call
 * worked in fresh memory, and the page faults of touching it cost more than compressing a
 * NAR.
 */
import * as zlib from 'node:zlib';
import { finished } from 'node:stream/promises';
import { SpareBuffers } from '../util/spare-buffers.js';

export interface ZstdFrameOptions {
  level: number;
}

/** zlib's output buffer size per stream: larger means fewer, larger output chunks. */
const OUT_CHUNK = 512 * 1024;
const empty = new Uint8Array(0);

/** Whether this Node has zstd in node:zlib (22.15 and later). */
export function builtinZstdAvailable(): boolean {
  return typeof zlib.createZstdCompress === 'function';
}

function params(level: number): Record<number, number> {
  const c = zlib.constants;
  // A content checksum the decoder verifies, as the zstd CLI writes by default.
  return { [c.ZSTD_c_compressionLevel]: level, [c.ZSTD_c_checksumFlag]: 1 };
}

/**
 * Output views as buffers the caller owns, so they can be transferred without a copy.
 * zlib's output chunks are views of its current output buffer, which it keeps writing
 * into; once a chunk reaches the end of its buffer, zlib takes a fresh one and never
 * writes there again. So views are held until their buffer is complete (or the frame is
 * finished) and then handed out joined, one view per buffer (a buffer can be transferred
 * once only): the whole buffer, not a copy, which the packers used to spend on copying
 * as much time as on hashing.
 */
function joinAdjacent(chunks: Buffer[]): Buffer[] {
  const joined: Buffer[] = [];
  for (const c of chunks) {
    const prev = joined[joined.length - 1];
    if (prev && prev.buffer === c.buffer && prev.byteOffset + prev.length === c.byteOffset) {
      joined[joined.length - 1] = Buffer.from(c.buffer, prev.byteOffset, prev.length + c.length);
    } else joined.push(c);
  }
  return joined.map(mostOrCopy);
}

/** The view itself when it is most of its buffer (worth transferring whole), else a copy. */
function mostOrCopy(b: Buffer): Buffer {
  return b.length * 2 >= b.buffer.byteLength ? b : copyOf(b);
}

function copyOf(b: Buffer): Buffer {
  const copy = Buffer.allocUnsafeSlow(b.length);
  b.copy(copy);
  return copy;
}

/**
 * Output buffer size for the reused contexts: filled ones are handed on whole, and ones
 * given back (see WholeFrameContexts) are written into again.
 */
export const FRAME_OUT_BYTES = 64 * 1024;

/**
 * zlib's native handle for a stream, which compresses in the calling thread into output
 * buffers the caller gives it. zlib.js drives it the same way for zstdCompressSync(), but
 * then closes the context; a stream's handle stays open, so its context can be reused.
 * Not a documented API, so it is looked for, and without it each frame is a one-shot call.
 */
interface SyncHandle {
  writeSync(
    flush: number,
    input: Uint8Array,
    inOffset: number,
    inLength: number,
    output: Uint8Array,
    outOffset: number,
    outLength: number,
  ): void;
}

/** Whether this Node's zlib streams have that handle (looked for once, on first use). */
let syncHandles = true;

interface SyncContext {
  stream: zlib.ZstdCompress;
  handle: SyncHandle;
  /** [output space left, input left] after each writeSync, as zlib.js reads them. */
  state: Uint32Array;
}

/**
 * One thread's zstd contexts for whole inputs, one per level, reused. Each frame is one
 * synchronous write flushed with ZSTD_e_end: given all its input in that one call, zstd
 * sizes the frame to it and records its size, byte for byte the one-shot call's frame.
 * Synchronous, on the calling thread: the round trip to libuv's pool per frame cost more
 * CPU than compressing beside the thread saved, and the packer threads keep the cores busy.
 */
export class WholeFrameContexts {
  private readonly kept = new Map<number, SyncContext>();

  /**
   * @param spare output buffers (of FRAME_OUT_BYTES) whose earlier output has been sent,
   *   which frames take before allocating: memory a thread writes into afresh costs a page
   *   fault per page, and one freed by the thread it went to is not the writer's to reuse.
   *   Without one given, a frame's copied-out last buffer is still kept for the next frame.
   */
  constructor(private readonly spare = new SpareBuffers(FRAME_OUT_BYTES, 1)) {}

  /** Compress `input` as one frame; returns once zstd is done with it (it may be reused). */
  frame(input: Uint8Array, level: number): Buffer[] {
    let c = this.kept.get(level);
    if (c === undefined) {
      c = syncHandles ? openSync(level) : undefined;
      if (c === undefined) {
        syncHandles = false;
        return oneShotFrame(input, level);
      }
      this.kept.set(level, c);
    }
    try {
      return writeFrame(c, input, this.spare);
    } catch (e) {
      // Its stream is destroyed: the next frame opens a new context.
      this.kept.delete(level);
      throw e;
    }
  }
}

/** A frame by zlib's one-shot call, as buffers the caller owns. */
function oneShotFrame(input: Uint8Array, level: number): Buffer[] {
  return joinAdjacent([zlib.zstdCompressSync(input, { params: params(level) })]);
}

function openSync(level: number): SyncContext | undefined {
  const stream = zlib.createZstdCompress({ params: params(level) });
  // Errors are read from `errored` after each write; this keeps one from being unhandled.
  stream.on('error', () => {});
  const { _handle: handle, _writeState: state } = stream as unknown as {
    _handle?: Partial<SyncHandle>;
    _writeState?: unknown;
  };
  if (typeof handle?.writeSync !== 'function' || !(state instanceof Uint32Array)) {
    stream.destroy();
    return undefined;
  }
  return { stream, handle: handle as SyncHandle, state };
}

/**
 * One frame into output buffers of the caller's own, spare ones first (the first sized to
 * the bound for a small input): nothing writes to them after it, so the last one needs no
 * copy.
 */
function writeFrame(
  { stream, handle, state }: SyncContext,
  input: Uint8Array,
  spare: SpareBuffers,
): Buffer[] {
  const out: Buffer[] = [];
  let inOffset = 0;
  let inLength = input.length;
  let size = Math.min(FRAME_OUT_BYTES, compressBound(input.length));
  for (;;) {
    const b = size === FRAME_OUT_BYTES ? spare.take() : Buffer.allocUnsafeSlow(size);
    try {
      handle.writeSync(zlib.constants.ZSTD_e_end, input, inOffset, inLength, b, 0, size);
    } catch (e) {
      stream.destroy();
      throw e;
    }
    // A zstd error destroys the stream (and its context) before writeSync returns.
    if (stream.errored) throw stream.errored;
    const [spaceLeft, inputLeft] = [state[0]!, state[1]!];
    inOffset += inLength - inputLeft;
    inLength = inputLeft;
    const kept = size > spaceLeft ? mostOrCopy(b.subarray(0, size - spaceLeft)) : undefined;
    if (kept) out.push(kept);
    // Its bytes copied out (mostly empty) or none written: it is written into again.
    if (kept?.buffer !== b.buffer) spare.give(b);
    // Output space left over means the frame is complete.
    if (spaceLeft > 0) return out;
    size = FRAME_OUT_BYTES;
  }
}

/** zstd's ZSTD_COMPRESSBOUND: the largest frame an input of n bytes compresses to. */
function compressBound(n: number): number {
  return n + (n >> 8) + (n < 128 * 1024 ? (128 * 1024 - n) >> 11 : 0);
}

export class ZstdFrameEncoder {
  private stream: zlib.ZstdCompress | undefined;
  private out: Buffer[] = [];
  private done = false;

  constructor(
    private readonly opts: ZstdFrameOptions,
    /** The thread's reused contexts for whole inputs (see the module comment). */
    private readonly contexts?: WholeFrameContexts,
  ) {}

  /**
   * Compress more input; resolves, once zstd has consumed all of it (the caller may reuse
   * the chunk), with whatever output is ready (maybe nothing).
   */
  async write(chunk: Uint8Array): Promise<Buffer[]> {
    const s = this.open();
    if (chunk.length > 0) {
      await new Promise<void>((resolve, reject) =>
        s.write(chunk, (err) => (err ? reject(err) : resolve())),
      );
    }
    return this.take();
  }

  /** Compress the last input and finish the frame; resolves with the rest of the output. */
  async end(chunk: Uint8Array = empty): Promise<Buffer[]> {
    if (this.done) throw new Error('zstd frame encoder used after end() or release()');
    if (this.stream === undefined) {
      // The whole input at once: a single-pass frame that records its size.
      this.done = true;
      return this.contexts
        ? this.contexts.frame(chunk, this.opts.level)
        : oneShotFrame(chunk, this.opts.level);
    }
    const s = this.stream;
    s.end(chunk);
    await finished(s);
    this.done = true;
    this.stream = undefined;
    const out = this.out;
    this.out = [];
    // The frame is finished: zlib writes nowhere any more.
    return joinAdjacent(out);
  }

  /** Drop the frame (and zstd's context) now, whatever state it is in. Idempotent. */
  release(): void {
    this.done = true;
    this.stream?.destroy();
    this.stream = undefined;
    this.out = [];
  }

  private open(): zlib.ZstdCompress {
    if (this.done) throw new Error('zstd frame encoder used after end() or release()');
    if (this.stream === undefined) {
      const s = zlib.createZstdCompress({ chunkSize: OUT_CHUNK, params: params(this.opts.level) });
      // Held as views until their buffer is complete (see joinAdjacent).
      s.on('data', (b: Buffer) => this.out.push(b));
      // Errors reach the caller through write()'s callback or finished(); this listener
      // only keeps an error with no pending call from being thrown as unhandled.
      s.on('error', () => {});
      this.stream = s;
    }
    return this.stream;
  }

  /** The views whose buffers zlib has filled; the current buffer's stay held. */
  private take(): Buffer[] {
    let done = this.out.length;
    while (done > 0) {
      const last = this.out[done - 1]!;
      if (last.byteOffset + last.length === last.buffer.byteLength) break;
      done--;
    }
    if (done === 0) return [];
    const out = this.out.slice(0, done);
    this.out = this.out.slice(done);
    return joinAdjacent(out);
  }
}
