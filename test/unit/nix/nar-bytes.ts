/**
 * Hand-framed NAR bytes for parser tests: builds archives token by token (so tests can also
 * build broken ones) without going through our encoder.
 */
import { createHash } from 'node:crypto';

export function u64(n: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

/** A framed string: length, bytes, zero padding to 8. */
export function str(s: string | Buffer, padByte = 0): Buffer {
  const bytes = typeof s === 'string' ? Buffer.from(s) : s;
  const pad = (8 - (bytes.length % 8)) % 8;
  return Buffer.concat([u64(bytes.length), bytes, Buffer.alloc(pad, padByte)]);
}

export const cat = (...parts: (string | Buffer)[]): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? str(p) : p)));

export type Tree =
  | { type: 'regular'; contents: Buffer | string; executable?: boolean }
  | { type: 'symlink'; target: string | Buffer }
  | { type: 'directory'; entries: [string | Buffer, Tree][] };

/** The node's tokens, in the order given (tests sort or not as they need). */
export function node(t: Tree): Buffer {
  switch (t.type) {
    case 'regular':
      return cat(
        '(',
        'type',
        'regular',
        ...(t.executable ? ['executable', ''] : []),
        'contents',
        str(t.contents),
        ')',
      );
    case 'symlink':
      return cat('(', 'type', 'symlink', 'target', str(t.target), ')');
    case 'directory':
      return cat(
        '(',
        'type',
        'directory',
        ...t.entries.map(([name, child]) =>
          cat('entry', '(', 'name', str(name), 'node', node(child), ')'),
        ),
        ')',
      );
  }
}

export const nar = (t: Tree): Buffer => cat('nix-archive-1', node(t));

export const sha256 = (b: Buffer): Buffer => createHash('sha256').update(b).digest();
