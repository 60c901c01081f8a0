import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const NIX32 = '0123456789abcdfghijklmnpqrsvwxyz';

/** The i-th of a family of distinct, valid hash parts (`tag` keeps families apart). */
export function hashPart(i: number, tag = 0): string {
  let s = '';
  let n = i;
  for (let k = 0; k < 8; k++) {
    s = NIX32[n % 32] + s;
    n = Math.floor(n / 32);
  }
  return NIX32[tag % 32]?.repeat(24) + s;
}

export function storePath(h: string, name = 'hello-2.12'): string {
  return `/nix/store/${h}-${name}`;
}

/** A fresh directory for one test's databases. */
export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'loft-index-test-'));
}
