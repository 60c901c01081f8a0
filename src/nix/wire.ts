/**
 * The framing shared by NARs and the nix-daemon's worker protocol: every integer is a u64
 * little-endian, every string is its length, its bytes, then zero padding to a multiple of
 * 8. The NAR code (nar-encode, nar-parse) and the daemon code (wire-reader, cursor,
 * wire-writer) read and write through these. Pure.
 */

/** The first string of every NAR. */
export const NAR_MAGIC = 'nix-archive-1';

const TWO_32 = 0x1_0000_0000;

/** Zero bytes after a string of `len` bytes, to the next multiple of 8. */
export function padding(len: number): number {
  return (8 - (len % 8)) % 8;
}

/**
 * The u64 at `at` as a number, or as a bigint when it is beyond 2^53-1 (no length or
 * count can be that large, so callers reject it with their own error).
 */
export function readU64(buf: Buffer, at: number): number | bigint {
  const hi = buf.readUInt32LE(at + 4);
  if (hi > 0x1f_ffff) return buf.readBigUInt64LE(at);
  return hi * TWO_32 + buf.readUInt32LE(at);
}

/** Write `n` (a safe non-negative integer) as a u64 at `at`. */
export function writeU64(buf: Buffer, n: number, at: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`u64 out of range: ${n}`);
  buf.writeUInt32LE(n % TWO_32, at);
  buf.writeUInt32LE(Math.floor(n / TWO_32), at + 4);
}

/** The offset of the first non-zero byte in [from, to), or -1 when the padding is clean. */
export function badPaddingAt(buf: Uint8Array, from: number, to: number): number {
  for (let i = from; i < to; i++) if (buf[i] !== 0) return i;
  return -1;
}

/** `bytes` framed: its length, the bytes, zero padding. */
export function framed(bytes: Uint8Array): Buffer {
  const out = Buffer.alloc(8 + bytes.length + padding(bytes.length));
  writeU64(out, bytes.length, 0);
  out.set(bytes, 8);
  return out;
}
