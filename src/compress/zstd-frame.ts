/**
 * One zstd frame, with Node's own zstd (node:zlib, Node >= 22.15): no native module of ours.
 * For worker threads (the zstd pool's and the NAR packers'), which own the per-NAR state;
 * zlib runs each chunk on libuv's thread pool, so a thread can serve several NARs at once.
 *
 * A frame fed by write() and end() streams; input given whole to end() (a NAR the packer
 * gathered, or one that is one chunk long) is compressed in one call instead, so zstd
 * knows its size: it sizes its tables to it and records it in the frame header. Output
 * comes as buffers the caller owns (zlib's own output buffers once zlib is done with them;
 * small ones copied), so they can be transferred.
 *
 * A thread that compresses many whole inputs passes a `WholeFrameContexts`: each input is
 * then one frame written to a zstd context kept from the last one, instead of a context
 * made and dropped per call. A dropped context's memory (and a one-shot call's output
 * buffers) is freed only when the garbage collector next runs, so every call worked in
 * fresh memory, and the page faults of touching it cost more than compressing a NAR.
 */
import * as zlib from 'node:zlib';
import { finished } from 'node:stream/promises';
import { Semaphore } from '../util/limit.js';

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

/** zlib's output buffer size for the reused contexts: a frame's last one is copied. */
const WHOLE_OUT_CHUNK = 64 * 1024;
/**
 * Contexts per level in a thread; more frames at once wait for it. A context made for each
 * would be fresh memory again, and with one each the packer threads compress as many NARs
 * at once as they did with one-shot calls: more only share the same cores among more zstd
 * contexts, which at high levels costs more CPU than it saves waiting.
 */
const WHOLE_CONTEXTS = 1;

/**
 * One thread's zstd contexts for whole inputs, reused. Each is a zlib stream whose every
 * write is a whole frame (flush ZSTD_e_end): given all its input in that one call, zstd
 * sizes the frame to it and records its size, byte for byte the one-shot call's frame.
 */
export class WholeFrameContexts {
  private readonly levels = new Map<number, { slots: Semaphore; idle: zlib.ZstdCompress[] }>();

  /** Compress `input` as one frame; resolves once zstd has consumed it (it may be reused). */
  frame(input: Uint8Array, level: number): Promise<Buffer[]> {
    let l = this.levels.get(level);
    if (l === undefined) {
      this.levels.set(level, (l = { slots: new Semaphore(WHOLE_CONTEXTS), idle: [] }));
    }
    const { slots, idle } = l;
    return slots.run(async () => {
      const s = idle.pop() ?? openWhole(level);
      const out: Buffer[] = [];
      const keep = (b: Buffer) => out.push(b);
      s.on('data', keep);
      try {
        // Output is pushed (and 'data' emitted) before the write's callback runs.
        await new Promise<void>((resolve, reject) =>
          s.write(input, (err) => (err ? reject(err) : resolve())),
        );
      } catch (e) {
        // A context that failed is not reused; the next frame opens a new one.
        s.destroy();
        throw e;
      } finally {
        s.off('data', keep);
      }
      idle.push(s);
      return ownedOutput(out);
    });
  }
}

function openWhole(level: number): zlib.ZstdCompress {
  const s = zlib.createZstdCompress({
    chunkSize: WHOLE_OUT_CHUNK,
    flush: zlib.constants.ZSTD_e_end,
    params: params(level),
  });
  // Errors reach the caller through write()'s callback.
  s.on('error', () => {});
  return s;
}

/**
 * A finished frame's views as buffers the caller owns. The views of buffers zlib has
 * filled are handed on as they are (see joinAdjacent); those of the buffer it is still
 * filling, which the context's next frame writes into, are copied.
 */
function ownedOutput(views: Buffer[]): Buffer[] {
  let filled = views.length;
  while (filled > 0) {
    const v = views[filled - 1]!;
    if (v.byteOffset + v.length === v.buffer.byteLength) break;
    filled--;
  }
  const out = joinAdjacent(views.slice(0, filled));
  const rest = views.slice(filled);
  if (rest.length > 0) {
    // Not Buffer.concat: a small result would be a view of Node's shared pool.
    const tail = Buffer.allocUnsafeSlow(rest.reduce((n, v) => n + v.length, 0));
    let at = 0;
    for (const v of rest) at += v.copy(tail, at);
    out.push(tail);
  }
  return out;
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
      if (this.contexts) return this.contexts.frame(chunk, this.opts.level);
      const out = zlib.zstdCompressSync(chunk, { params: params(this.opts.level) });
      return joinAdjacent([out]);
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
