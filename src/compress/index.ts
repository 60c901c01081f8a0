/**
 * Compression methods for NARs: zstd (default), xz and none, each a streaming Duplex
 * that never blocks the event loop. zstd runs in a shared pool of worker threads; xz
 * runs the `xz` program; none passes bytes through.
 *
 *   const c = getCompression('zstd');
 *   await pipeline(narStream, c.createCompressor({ level: 3 }), upload);
 *   ...
 *   await shutdownCompression(); // before exit, so worker threads stop at once
 */
import { execFile } from 'node:child_process';
import { availableParallelism } from 'node:os';
import type { Duplex } from 'node:stream';
import {
  CompressionToolMissingError,
  CompressionFailedError,
  InvalidCompressionLevelError,
  UnknownCompressionError,
} from './errors.js';
import { ProcessCompressStream } from './process-stream.js';
import { Slots } from './slots.js';
import { ZstdPool } from './zstd-pool.js';
import { ZstdCompressStream } from './zstd-stream.js';
import { NoneCompressStream } from './none-stream.js';
import type { CompressionDigests, InputExpectation } from './digests.js';

export * from './errors.js';
export type { CompressionDigests, InputExpectation } from './digests.js';

import {
  COMPRESSIONS,
  COMPRESSION_LEVELS,
  type CompressionName,
} from '../util/compression-rules.js';

export type { CompressionName };
export const compressionNames: readonly CompressionName[] = COMPRESSIONS;

export interface CompressorOptions {
  /**
   * Method-specific level, validated at once: zstd 1-19 (default 3), xz 0-9 (default 6).
   * "none" ignores it.
   */
  level?: number;
  /**
   * sha256 and size of input and output, readable with `digests()` after 'end'. zstd
   * computes them in its worker thread, so the main thread never hashes the bytes.
   */
  digests?: boolean;
  /**
   * What the input must be. When its sha256 or size differs, the stream errors with
   * COMPRESSION_INPUT_MISMATCH instead of ending (as soon as it grows too big), so a
   * consumer that completes only on a clean end never completes with other bytes.
   */
  expectInput?: InputExpectation;
}

/** A compressor stream; `digests()` is set once it has ended, when they were asked for. */
export type Compressor = Duplex & { digests(): CompressionDigests | undefined };

export interface Compression {
  readonly name: CompressionName;
  /** The narinfo `Compression:` value. */
  readonly narinfoName: string;
  /** Appended to the NAR's file name: '.zst', '.xz' or ''. */
  readonly extension: string;
  /** The default level, or undefined when the method has none. */
  readonly defaultLevel: number | undefined;
  /**
   * A fresh compressor for one NAR. Throws InvalidCompressionLevelError at once for a bad
   * level. The stream errors with a LoftError (COMPRESSION_TOOL_MISSING,
   * COMPRESSION_FAILED) when compression fails; destroying it frees its worker session or
   * kills its process.
   */
  createCompressor(opts?: CompressorOptions): Compressor;
  /**
   * The level a compressor of this method uses for `level` (the default when undefined);
   * InvalidCompressionLevelError for one out of range. For compressing elsewhere (src/pack).
   */
  resolveLevel(level: number | undefined): number | undefined;
  /**
   * Checks this method can run here (loads zstd in a worker, or runs `xz --version`), so
   * a service can fail at start instead of at its first upload.
   */
  check(): Promise<void>;
}

const ZSTD_LEVELS = COMPRESSION_LEVELS.zstd!;
const XZ_LEVELS = COMPRESSION_LEVELS.xz!;
/** Input batches at the worker per stream. */
const ZSTD_MAX_INFLIGHT = 2;

let zstdPool: ZstdPool | undefined;
let xzSlots: Slots | undefined;

function pool(): ZstdPool {
  zstdPool ??= new ZstdPool();
  return zstdPool;
}

function slots(): Slots {
  xzSlots ??= new Slots(Math.max(1, availableParallelism()));
  return xzSlots;
}

function checkLevel(
  method: string,
  level: unknown,
  range: { min: number; max: number; default: number },
): number {
  if (level === undefined) return range.default;
  if (
    typeof level !== 'number' ||
    !Number.isInteger(level) ||
    level < range.min ||
    level > range.max
  ) {
    throw new InvalidCompressionLevelError(
      method,
      level,
      `an integer from ${range.min} to ${range.max}`,
    );
  }
  return level;
}

const zstd: Compression = {
  name: 'zstd',
  narinfoName: 'zstd',
  extension: '.zst',
  defaultLevel: ZSTD_LEVELS.default,
  resolveLevel: (level) => checkLevel('zstd', level, ZSTD_LEVELS),
  createCompressor(opts = {}) {
    const level = checkLevel('zstd', opts.level, ZSTD_LEVELS);
    return new ZstdCompressStream(pool(), level, {
      maxInflight: ZSTD_MAX_INFLIGHT,
      digests: opts.digests,
      expectInput: opts.expectInput,
    });
  },
  async check() {
    // Compresses four bytes here (microseconds), rather than starting a worker thread that
    // would then idle beside the NAR packers for 30 s.
    const { ZstdFrameEncoder, builtinZstdAvailable } = await import('./zstd-frame.js');
    if (!builtinZstdAvailable()) {
      throw new CompressionFailedError(
        'zstd',
        `this Node.js (${process.version}) has no zstd in node:zlib; Loft needs Node.js 22.15 or later (24 recommended)`,
      );
    }
    try {
      await new ZstdFrameEncoder({ level: ZSTD_LEVELS.default }).end(Buffer.from('loft'));
    } catch (e) {
      throw new CompressionFailedError('zstd', `cannot load zstd: ${(e as Error).message}`, e);
    }
  },
};

/**
 * xz runs single-threaded (-T1, ~100 MiB at level 6) with at most one process per core:
 * measured here, `-T0` was 1.8x faster on one stream but took 260 MiB per process, and
 * the pipeline compresses many NARs at once, which uses the cores anyway.
 */
const xz: Compression = {
  name: 'xz',
  narinfoName: 'xz',
  extension: '.xz',
  defaultLevel: XZ_LEVELS.default,
  resolveLevel: (level) => checkLevel('xz', level, XZ_LEVELS),
  createCompressor(opts = {}) {
    const level = checkLevel('xz', opts.level, XZ_LEVELS);
    return new ProcessCompressStream({
      method: 'xz',
      command: 'xz',
      args: ['--compress', '--stdout', '--quiet', `-${level}`, '-T1'],
      slots: slots(),
      digests: opts.digests,
      expectInput: opts.expectInput,
    });
  },
  check() {
    return new Promise((resolve, reject) => {
      execFile('xz', ['--version'], (err) => {
        if (err === null) resolve();
        else if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          reject(new CompressionToolMissingError('xz', 'xz', err));
        } else reject(new CompressionFailedError('xz', `xz --version failed: ${err.message}`, err));
      });
    });
  },
};

const none: Compression = {
  name: 'none',
  narinfoName: 'none',
  extension: '',
  defaultLevel: undefined,
  // A level means nothing here and is ignored: the config loader already warns when one
  // is set with compression = "none", and the pipeline passes it through unchanged.
  resolveLevel: () => undefined,
  createCompressor(opts = {}) {
    return new NoneCompressStream(opts);
  },
  async check() {},
};

const methods: Record<CompressionName, Compression> = { zstd, xz, none };

/** The compression method called `name` (as written in the config). */
export function getCompression(name: string): Compression {
  if (!Object.hasOwn(methods, name)) throw new UnknownCompressionError(name);
  return methods[name as CompressionName];
}

/**
 * Stops the zstd worker threads now (streams still compressing fail). Idle workers do
 * not keep the process alive anyway; call this at exit so nothing lingers. A later
 * compressor starts fresh workers.
 */
export async function shutdownCompression(): Promise<void> {
  const p = zstdPool;
  zstdPool = undefined;
  await p?.shutdown();
}

/** Workers and sessions of the zstd pool, and xz processes running or waiting. */
export function compressionStats(): {
  zstdWorkers: number;
  zstdSessions: number;
  xzRunning: number;
  xzWaiting: number;
} {
  const z = zstdPool?.stats() ?? { workers: 0, sessions: 0 };
  return {
    zstdWorkers: z.workers,
    zstdSessions: z.sessions,
    xzRunning: xzSlots?.inUse ?? 0,
    xzWaiting: xzSlots?.waiting ?? 0,
  };
}
