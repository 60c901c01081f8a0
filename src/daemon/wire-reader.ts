/**
 * Reads the worker protocol's framing from a byte stream that arrives in arbitrary chunks.
 * Every length-prefixed read takes a maximum, checked before waiting for (or allocating)
 * the bytes. Flow control: when more than `highWater` bytes are buffered the source is
 * paused, and resumed once a reader drains it below a quarter of that or waits for more,
 * so a slow consumer of a NAR stream holds the daemon back instead of filling memory.
 */
import { DaemonProtocolError } from './errors.js';
import { badPaddingAt, padding, readU64 } from '../nix/wire.js';

export interface FlowControl {
  pause(): void;
  resume(): void;
}

const EMPTY = Buffer.alloc(0);

export class WireReader {
  private chunks: Buffer[] = [];
  /** Read offset into chunks[0]. */
  private head = 0;
  private size = 0;
  private ended = false;
  private failure: Error | undefined;
  private waiter: (() => void) | undefined;
  private paused = false;

  /**
   * @param onEnd makes the error for a stream that ends while `what` is being read (it
   *   knows the endpoint and, for a child process, its exit status and stderr).
   */
  constructor(
    private readonly onEnd: (what: string) => Error,
    private readonly flow: FlowControl | undefined = undefined,
    private readonly highWater = 1 << 20,
  ) {}

  /** Feed bytes from the transport. */
  push(chunk: Buffer): void {
    if (chunk.length === 0 || this.ended) return;
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (this.size > this.highWater && !this.paused && this.flow) {
      this.paused = true;
      this.flow.pause();
    }
    this.wake();
  }

  /** The transport ended: reads that cannot be satisfied fail. */
  end(): void {
    this.ended = true;
    this.wake();
  }

  /** The transport failed: reads that cannot be satisfied fail with `err`. */
  fail(err: Error): void {
    this.failure ??= err;
    this.ended = true;
    this.wake();
  }

  async u64(what: string): Promise<number> {
    if (this.size < 8) await this.fill(8, what);
    const v = readU64(this.take(8), 0);
    if (typeof v === 'bigint') throw new DaemonProtocolError(`${what} is ${v}, beyond 2^53-1`);
    return v;
  }

  /** A u64 that may use all 64 bits (activity ids carry the daemon's pid in the high half). */
  async u64big(what: string): Promise<bigint> {
    if (this.size < 8) await this.fill(8, what);
    return this.take(8).readBigUInt64LE(0);
  }

  async bool(what: string): Promise<boolean> {
    const v = await this.u64(what);
    if (v > 1) throw new DaemonProtocolError(`${what} should be a boolean (0 or 1), got ${v}`);
    return v === 1;
  }

  /** A count for a list, checked against `max` before any item is read. */
  async count(max: number, what: string): Promise<number> {
    const n = await this.u64(`${what} count`);
    if (n > max)
      throw new DaemonProtocolError(`${what} has ${n} items, more than the limit of ${max}`);
    return n;
  }

  async bytes(max: number, what: string): Promise<Buffer> {
    const len = await this.u64(`${what} length`);
    if (len > max) {
      throw new DaemonProtocolError(`${what} is ${len} bytes long, more than the limit of ${max}`);
    }
    const pad = padding(len);
    if (this.size < len + pad) await this.fill(len + pad, what);
    const data = this.take(len);
    if (pad > 0) {
      if (badPaddingAt(this.take(pad), 0, pad) !== -1) {
        throw new DaemonProtocolError(`non-zero padding after ${what}`);
      }
    }
    return data;
  }

  async string(max: number, what: string): Promise<string> {
    return (await this.bytes(max, what)).toString('utf8');
  }

  async strings(maxCount: number, maxLength: number, what: string): Promise<string[]> {
    const n = await this.count(maxCount, what);
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(await this.string(maxLength, `${what} item`));
    return out;
  }

  /** Up to `max` buffered bytes (at least one; waits if none), for unframed streams. */
  async chunk(max: number, what: string): Promise<Buffer> {
    if (this.size === 0) await this.fill(1, what);
    const first = this.chunks[0]!;
    const n = Math.min(max, first.length - this.head);
    return this.take(n);
  }

  /**
   * The buffered bytes at the head as one contiguous range, merging chunks so that at least
   * min(`need`, buffered) bytes are contiguous. Undefined when nothing is buffered.
   */
  view(need: number): { buf: Buffer; start: number; end: number } | undefined {
    if (this.size === 0) return undefined;
    let first = this.chunks[0]!;
    const target = Math.min(need, this.size);
    if (first.length - this.head < target) {
      let total = first.length - this.head;
      let k = 1;
      while (total < target) total += this.chunks[k++]!.length;
      first = Buffer.concat([first.subarray(this.head), ...this.chunks.slice(1, k)], total);
      this.chunks.splice(0, k, first);
      this.head = 0;
    }
    return { buf: first, start: this.head, end: first.length };
  }

  /** Consume `n` buffered bytes (after parsing them through `view`). */
  skip(n: number): void {
    if (n > 0) this.take(n, false);
  }

  /** Wait until at least `n` bytes are buffered; fails like any read if the stream ends. */
  async waitFor(n: number, what: string): Promise<void> {
    if (this.size < n) await this.fill(n, what);
  }

  /** Put back bytes taken by `chunk` that belong to the next message. */
  unread(b: Buffer): void {
    if (b.length === 0) return;
    if (this.head > 0) {
      this.chunks[0] = this.chunks[0]!.subarray(this.head);
      this.head = 0;
    }
    this.chunks.unshift(b);
    this.size += b.length;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  private async fill(n: number, what: string): Promise<void> {
    while (this.size < n) {
      if (this.ended) {
        if (this.failure) throw this.failure;
        throw this.onEnd(what);
      }
      if (this.paused) {
        this.paused = false;
        this.flow?.resume();
      }
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  private take(n: number, copy = true): Buffer {
    if (n === 0) return EMPTY;
    let out: Buffer;
    const first = this.chunks[0]!;
    if (first.length - this.head >= n) {
      out = copy ? first.subarray(this.head, this.head + n) : EMPTY;
      this.head += n;
      if (this.head === first.length) {
        this.chunks.shift();
        this.head = 0;
      }
    } else {
      out = copy ? Buffer.allocUnsafe(n) : EMPTY;
      let filled = 0;
      while (filled < n) {
        const c = this.chunks[0]!;
        const k = Math.min(n - filled, c.length - this.head);
        if (copy) c.copy(out, filled, this.head, this.head + k);
        filled += k;
        this.head += k;
        if (this.head === c.length) {
          this.chunks.shift();
          this.head = 0;
        }
      }
    }
    this.size -= n;
    if (this.paused && this.size < this.highWater / 4) {
      this.paused = false;
      this.flow?.resume();
    }
    return out;
  }
}
