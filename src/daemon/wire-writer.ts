/**
 * Serialises requests in the worker protocol's framing: u64 little-endian integers, and
 * byte strings as length, bytes, zero padding to 8. Writes into one growing buffer, so a
 * request is one allocation and goes to the transport in one piece.
 */

import { padding, writeU64 } from '../nix/wire.js';

export class WireWriter {
  private buf: Buffer;
  private size = 0;

  constructor(initial = 128) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  u64(n: number | bigint): this {
    this.reserve(8);
    if (typeof n === 'bigint') {
      if (n < 0n || n > 0xffff_ffff_ffff_ffffn) throw new RangeError(`u64 out of range: ${n}`);
      this.buf.writeBigUInt64LE(n, this.size);
    } else {
      writeU64(this.buf, n, this.size);
    }
    this.size += 8;
    return this;
  }

  bool(v: boolean): this {
    return this.u64(v ? 1 : 0);
  }

  bytes(data: Uint8Array): this {
    this.u64(data.length);
    const pad = padding(data.length);
    this.reserve(data.length + pad);
    this.buf.set(data, this.size);
    this.buf.fill(0, this.size + data.length, this.size + data.length + pad);
    this.size += data.length + pad;
    return this;
  }

  string(s: string): this {
    const len = Buffer.byteLength(s, 'utf8');
    this.u64(len);
    const pad = padding(len);
    this.reserve(len + pad);
    this.buf.write(s, this.size, 'utf8');
    this.buf.fill(0, this.size + len, this.size + len + pad);
    this.size += len + pad;
    return this;
  }

  strings(list: Iterable<string>): this {
    const items = [...list];
    this.u64(items.length);
    for (const s of items) this.string(s);
    return this;
  }

  /** The bytes written (a view of the internal buffer: do not write more after this). */
  toBuffer(): Buffer {
    return this.buf.subarray(0, this.size);
  }

  private reserve(n: number): void {
    if (this.size + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.size + n));
    this.buf.copy(next, 0, 0, this.size);
    this.buf = next;
  }
}
