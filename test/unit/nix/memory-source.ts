/**
 * An in-memory NarSource for encoder tests: a tree of plain objects, with hooks to observe
 * reads and to misbehave (files that change size, special files, bad names).
 */
import type { NarFileType, NarSource, NarSourceStat } from '../../../src/nix/nar-encode.js';

export type MemNode =
  | { type: 'regular'; contents: Buffer; mode?: number; lieSize?: number; chunk?: number }
  | { type: 'symlink'; target: Buffer }
  | { type: 'directory'; entries: Map<string, MemNode>; rawNames?: Buffer[] }
  | { type: Exclude<NarFileType, 'regular' | 'symlink' | 'directory'> };

/** Names are stored as latin1 strings so any byte sequence is a key. */
export const key = (b: Buffer) => b.toString('latin1');

export class MemorySource implements NarSource {
  reads = 0;
  smallReads = 0;
  intoReads = 0;
  chunksProduced = 0;
  readonly seenChunks: Buffer[] = [];

  constructor(
    readonly root: MemNode,
    readonly useSmall = true,
  ) {
    if (!useSmall) this.readSmallFile = undefined;
  }

  private find(path: Buffer): MemNode {
    const parts = path.toString('latin1').split('/').slice(1);
    let n = this.root;
    for (const p of parts) {
      if (n.type !== 'directory') throw new Error(`ENOTDIR ${path}`);
      const next = n.entries.get(p);
      if (!next) throw new Error(`ENOENT ${path.toString('latin1')}`);
      n = next;
    }
    return n;
  }

  async lstat(path: Buffer): Promise<NarSourceStat> {
    const n = this.find(path);
    if (n.type === 'regular')
      return { type: 'regular', size: n.lieSize ?? n.contents.length, mode: n.mode ?? 0o444 };
    return { type: n.type, size: 0, mode: 0o555 };
  }

  async readdir(path: Buffer): Promise<Buffer[]> {
    const n = this.find(path);
    if (n.type !== 'directory') throw new Error('ENOTDIR');
    // Deliberately unsorted (reverse insertion) to prove the encoder sorts.
    return n.rawNames ?? [...n.entries.keys()].reverse().map((k) => Buffer.from(k, 'latin1'));
  }

  async readlink(path: Buffer): Promise<Buffer> {
    const n = this.find(path);
    if (n.type !== 'symlink') throw new Error('EINVAL');
    return n.target;
  }

  readSmallFile: NarSource['readSmallFile'] = async (path: Buffer) => {
    const n = this.find(path);
    if (n.type !== 'regular') throw new Error('EISDIR');
    this.smallReads++;
    return Buffer.from(n.contents);
  };

  async readFileInto(path: Buffer, dest: Uint8Array): Promise<number> {
    const n = this.find(path);
    if (n.type !== 'regular') throw new Error('EISDIR');
    this.intoReads++;
    dest.set(n.contents.subarray(0, dest.length));
    return Math.min(n.contents.length, dest.length + 1);
  }

  async *readFile(path: Buffer): AsyncGenerator<Uint8Array> {
    const n = this.find(path);
    if (n.type !== 'regular') throw new Error('EISDIR');
    this.reads++;
    const step = n.chunk ?? 1000;
    for (let i = 0; i < n.contents.length; i += step) {
      this.chunksProduced++;
      const c = n.contents.subarray(i, i + step);
      this.seenChunks.push(c);
      yield c;
    }
  }
}

export const file = (contents: string | Buffer, executable = false): MemNode => ({
  type: 'regular',
  contents: typeof contents === 'string' ? Buffer.from(contents) : contents,
  mode: executable ? 0o755 : 0o644,
});
export const link = (target: string | Buffer): MemNode => ({
  type: 'symlink',
  target: typeof target === 'string' ? Buffer.from(target) : target,
});
export const dir = (entries: Record<string, MemNode> | [Buffer | string, MemNode][]): MemNode => ({
  type: 'directory',
  entries: new Map(
    Array.isArray(entries)
      ? entries.map(([k, v]) => [typeof k === 'string' ? key(Buffer.from(k)) : key(k), v])
      : Object.entries(entries).map(([k, v]) => [key(Buffer.from(k)), v]),
  ),
});

export async function collectNar(
  gen: AsyncIterable<Buffer>,
): Promise<{ bytes: Buffer; chunks: Buffer[] }> {
  const chunks: Buffer[] = [];
  for await (const c of gen) chunks.push(c);
  return { bytes: Buffer.concat(chunks), chunks };
}
