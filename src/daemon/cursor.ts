/**
 * Synchronous reads over bytes already received. Replies are usually complete in the
 * buffer, so parsing them without a promise per field keeps a closure walk of thousands of
 * paths cheap; when bytes are missing the cursor throws NeedMore (how many bytes from its
 * start it needs at least) and the caller waits and parses again from a checkpoint.
 * Limits are checked as soon as a length is known, before waiting for its bytes.
 */
import { badPaddingAt, padding, readU64 } from '../nix/wire.js';
import { DaemonProtocolError } from './errors.js';

export class NeedMore {
  /** Bytes from the cursor's start needed at least. */
  constructor(readonly need: number) {}
}

export class Cursor {
  pos: number;
  constructor(
    readonly buf: Buffer,
    readonly start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  /** Bytes consumed since the start. */
  get consumed(): number {
    return this.pos - this.start;
  }

  private ensure(n: number): void {
    if (this.end - this.pos < n) throw new NeedMore(this.pos - this.start + n);
  }

  u64(what: string): number {
    this.ensure(8);
    const v = readU64(this.buf, this.pos);
    if (typeof v === 'bigint') throw new DaemonProtocolError(`${what} is ${v}, beyond 2^53-1`);
    this.pos += 8;
    return v;
  }

  /** A u64 that may use all 64 bits (activity ids carry the daemon's pid in the high half). */
  u64big(what: string): bigint {
    void what;
    this.ensure(8);
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    return v;
  }

  bool(what: string): boolean {
    const v = this.u64(what);
    if (v > 1) throw new DaemonProtocolError(`${what} should be a boolean (0 or 1), got ${v}`);
    return v === 1;
  }

  count(max: number, what: string): number {
    const n = this.u64(`${what} count`);
    if (n > max)
      throw new DaemonProtocolError(`${what} has ${n} items, more than the limit of ${max}`);
    return n;
  }

  /** Offsets of a framed string's bytes (checked and consumed, padding included). */
  private frame(max: number, what: string): number {
    const len = this.u64(`${what} length`);
    if (len > max) {
      throw new DaemonProtocolError(`${what} is ${len} bytes long, more than the limit of ${max}`);
    }
    const pad = padding(len);
    this.ensure(len + pad);
    const at = this.pos;
    if (badPaddingAt(this.buf, at + len, at + len + pad) !== -1) {
      throw new DaemonProtocolError(`non-zero padding after ${what}`);
    }
    this.pos += len + pad;
    return len;
  }

  /** A framed byte string (a copy: the buffer underneath is reused). */
  bytes(max: number, what: string): Buffer {
    const len = this.frame(max, what);
    const at = this.pos - len - padding(len);
    return Buffer.from(this.buf.subarray(at, at + len));
  }

  string(max: number, what: string): string {
    const len = this.frame(max, what);
    const at = this.pos - len - padding(len);
    return this.buf.toString('utf8', at, at + len);
  }

  strings(maxCount: number, maxLength: number, what: string): string[] {
    const n = this.count(maxCount, what);
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(this.string(maxLength, `${what} item`));
    return out;
  }
}
