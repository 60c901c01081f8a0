/**
 * The NAR encoder's filesystem, over node:fs. Paths are Buffers end to end, so names that
 * are not valid UTF-8 survive. Large files are read in `readSize` pieces into fresh buffers
 * (handed on without copying); small files in one read.
 */
import { open, lstat, readdir, readlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import {
  encodeNar,
  type NarEncodeOptions,
  type NarFileType,
  type NarSource,
  type NarSourceStat,
} from '../nix/nar-encode.js';

export interface FsNarSourceOptions {
  /** Bytes per read for large files. Default 1 MiB. */
  readSize?: number;
}

const DEFAULT_READ_SIZE = 1024 * 1024;

function typeOf(st: Stats): NarFileType {
  if (st.isFile()) return 'regular';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isSocket()) return 'socket';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'character-device';
  if (st.isBlockDevice()) return 'block-device';
  return 'unknown';
}

export function createFsNarSource(options: FsNarSourceOptions = {}): NarSource {
  const readSize = options.readSize ?? DEFAULT_READ_SIZE;
  return {
    async lstat(path: Buffer): Promise<NarSourceStat> {
      const st = await lstat(path);
      return { type: typeOf(st), size: st.size, mode: st.mode };
    },

    readdir(path: Buffer): Promise<Buffer[]> {
      return readdir(path, { encoding: 'buffer' });
    },

    readlink(path: Buffer): Promise<Buffer> {
      return readlink(path, { encoding: 'buffer' });
    },

    async readSmallFile(path: Buffer, size: number): Promise<Uint8Array> {
      const fh = await open(path, 'r');
      try {
        // One byte more than expected: reading it means the file grew.
        const buf = Buffer.allocUnsafe(size + 1);
        let n = 0;
        for (;;) {
          const { bytesRead } = await fh.read(buf, n, buf.length - n, null);
          if (bytesRead === 0) break;
          n += bytesRead;
          if (n === buf.length) break;
        }
        return buf.subarray(0, n);
      } finally {
        await fh.close();
      }
    },

    async *readFile(path: Buffer, size: number): AsyncGenerator<Uint8Array> {
      const fh = await open(path, 'r');
      try {
        let left = size + 1;
        while (left > 0) {
          const buf = Buffer.allocUnsafe(Math.min(readSize, left));
          const { bytesRead } = await fh.read(buf, 0, buf.length, null);
          if (bytesRead === 0) return;
          left -= bytesRead;
          if (bytesRead === buf.length) {
            yield buf;
          } else {
            // A short read of a regular file means its end.
            yield buf.subarray(0, bytesRead);
            return;
          }
        }
      } finally {
        await fh.close();
      }
    },
  };
}

/** The NAR of the file tree at `path` (a store path or any directory), as chunks. */
export function dumpPath(
  path: string | Buffer,
  options: NarEncodeOptions & FsNarSourceOptions = {},
): AsyncGenerator<Buffer, void, undefined> {
  return encodeNar(createFsNarSource(options), path, options);
}
