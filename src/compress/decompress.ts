/**
 * Decompressors for reading NARs back out of a cache (`--verify --deep`), by the narinfo's
 * `Compression:` value. They run the compression tools Loft already needs (`zstd`, `xz`,
 * and `bzip2` for narinfos without the field), at most one process per core.
 */
import { availableParallelism } from 'node:os';
import { PassThrough, type Duplex } from 'node:stream';
import { ProcessCompressStream } from './process-stream.js';
import { Slots } from './slots.js';
import { UnknownCompressionError } from './errors.js';

const TOOLS: Record<string, { command: string; args: string[] }> = {
  zstd: { command: 'zstd', args: ['--decompress', '--stdout', '--quiet'] },
  xz: { command: 'xz', args: ['--decompress', '--stdout', '--quiet', '-T1'] },
  bzip2: { command: 'bzip2', args: ['--decompress', '--stdout', '--quiet'] },
};

let slots: Slots | undefined;

/** Whether `createDecompressor` can read NARs compressed this way. */
export function canDecompress(narinfoCompression: string): boolean {
  return narinfoCompression === 'none' || Object.hasOwn(TOOLS, narinfoCompression);
}

/**
 * A stream from compressed bytes to the NAR. Errors with COMPRESSION_FAILED when the
 * input is not valid for the method (e.g. truncated), COMPRESSION_TOOL_MISSING when the
 * tool is not installed; UnknownCompressionError at once for a method it cannot read.
 */
export function createDecompressor(narinfoCompression: string): Duplex {
  if (narinfoCompression === 'none') return new PassThrough();
  const tool = TOOLS[narinfoCompression];
  if (tool === undefined || !Object.hasOwn(TOOLS, narinfoCompression)) {
    throw new UnknownCompressionError(narinfoCompression);
  }
  slots ??= new Slots(Math.max(1, availableParallelism()));
  return new ProcessCompressStream({
    method: `${narinfoCompression} (decompressing)`,
    command: tool.command,
    args: tool.args,
    slots,
  });
}
