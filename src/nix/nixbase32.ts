/**
 * Nix's base32 ("nix32"): its own alphabet (no e, o, u, t), emitted from the highest 5-bit
 * group down, where bit k of the input is bit k%8 of byte k/8. Not RFC 4648.
 */
import { InvalidNix32Error } from './errors.js';

export const NIX32_ALPHABET = '0123456789abcdfghijklmnpqrsvwxyz';

const DECODE = new Int8Array(128).fill(-1);
for (let i = 0; i < NIX32_ALPHABET.length; i++) DECODE[NIX32_ALPHABET.charCodeAt(i)] = i;

/** Characters needed for `bytes` bytes: floor((8n-1)/5)+1, and 0 for no bytes. */
export function nix32Length(bytes: number): number {
  return bytes === 0 ? 0 : Math.floor((bytes * 8 - 1) / 5) + 1;
}

export function encodeNix32(bytes: Uint8Array): string {
  const len = nix32Length(bytes.length);
  let s = '';
  for (let n = len - 1; n >= 0; n--) {
    const b = n * 5;
    const i = b >> 3;
    const j = b & 7;
    const lo = bytes[i]! >> j;
    const hi = i + 1 < bytes.length ? bytes[i + 1]! << (8 - j) : 0;
    s += NIX32_ALPHABET[(lo | hi) & 0x1f];
  }
  return s;
}

/**
 * Decode nix32. The byte count follows from the length; a length no byte count encodes to,
 * a character outside the alphabet, or set bits beyond the last byte are all rejected, so
 * every accepted string is the one canonical encoding of its bytes.
 */
export function decodeNix32(s: string): Buffer {
  const n = Math.floor((s.length * 5) / 8);
  if (nix32Length(n) !== s.length) {
    throw new InvalidNix32Error(s, `no byte string encodes to ${s.length} characters`);
  }
  const out = Buffer.alloc(n);
  for (let k = 0; k < s.length; k++) {
    const code = s.charCodeAt(s.length - k - 1);
    const digit = code < 128 ? DECODE[code]! : -1;
    if (digit < 0) {
      throw new InvalidNix32Error(
        s,
        `character ${JSON.stringify(s[s.length - k - 1])} is not in the nix32 alphabet ${NIX32_ALPHABET}`,
      );
    }
    const b = k * 5;
    const i = b >> 3;
    const j = b & 7;
    out[i] = out[i]! | ((digit << j) & 0xff);
    const carry = digit >> (8 - j);
    if (i + 1 < n) out[i + 1] = out[i + 1]! | carry;
    else if (carry !== 0) {
      throw new InvalidNix32Error(
        s,
        'non-canonical: the first character sets bits beyond the last byte',
      );
    }
  }
  return out;
}

/** True if `s` is canonical nix32 for exactly `bytes` bytes. */
export function isNix32(s: string, bytes: number): boolean {
  if (s.length !== nix32Length(bytes)) return false;
  try {
    decodeNix32(s);
    return true;
  } catch {
    return false;
  }
}
