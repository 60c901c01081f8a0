/**
 * NAR framing shared by the encoder and the parser: every integer is a u64 little-endian,
 * every string is its length, its bytes, then zero padding to a multiple of 8.
 */

/** The first string of every NAR. */
export const NAR_MAGIC = 'nix-archive-1';

/** Zero bytes after a string of `len` bytes, to the next multiple of 8. */
export function padding(len: number): number {
  return (8 - (len % 8)) % 8;
}
