/**
 * Serialises requests in the worker protocol's framing: u64 little-endian integers, and
 * byte strings as length, bytes, zero padding to 8. Builds one buffer per request so a
 * request is written to the transport in one piece.
 */

const ZEROS = Buffer.alloc(8);

export function paddingOf(len: number): number {
  return (8 - (len % 8)) % 8;
}

export class WireWriter {
  private readonly parts: Buffer[] = [];
  private size = 0;

  u64(n: number | bigint): this {
    const b = Buffer.allocUnsafe(8);
    if (typeof n === 'bigint') {
      if (n < 0n || n > 0xffff_ffff_ffff_ffffn) throw new RangeError(`u64 out of range: ${n}`);
      b.writeBigUInt64LE(n);
    } else {
      if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`u64 out of range: ${n}`);
      b.writeUInt32LE(n % 0x1_0000_0000, 0);
      b.writeUInt32LE(Math.floor(n / 0x1_0000_0000), 4);
    }
    return this.push(b);
  }

  bool(v: boolean): this {
    return this.u64(v ? 1 : 0);
  }

  bytes(data: Uint8Array): this {
    this.u64(data.length);
    this.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    const pad = paddingOf(data.length);
    if (pad > 0) this.push(ZEROS.subarray(0, pad));
    return this;
  }

  string(s: string): this {
    return this.bytes(Buffer.from(s, 'utf8'));
  }

  strings(list: Iterable<string>): this {
    const items = [...list];
    this.u64(items.length);
    for (const s of items) this.string(s);
    return this;
  }

  toBuffer(): Buffer {
    return this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size);
  }

  private push(b: Buffer): this {
    this.parts.push(b);
    this.size += b.length;
    return this;
  }
}
