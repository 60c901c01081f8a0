/**
 * Test support for compression: deterministic inputs, and round trips through the real
 * `zstd -d` / `xz -d` programs (what Nix's decoders must agree with), streamed so large
 * inputs never sit in memory.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Duplex, Readable, Writable } from 'node:stream';

export type DataKind = 'random' | 'text';

/** A small deterministic PRNG (xorshift32), so "text" inputs are the same every run. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

const words = (
  'the nix store path derivation closure reference output hash sha256 narinfo ' +
  'compression upload bucket signature lib bin share include usr local etc ' +
  'ELF .so .a .h { } ( ) ; = 0 1 2 3 4 5 6 7 8 9 \n \n\t'
).split(' ');

/** `total` bytes of `kind` data in chunks of `chunkSize` (the last may be shorter). */
export function* generate(
  kind: DataKind,
  total: number,
  chunkSize: number,
  seed = 1,
): Generator<Buffer> {
  const next = prng(seed);
  let left = total;
  while (left > 0) {
    const n = Math.min(chunkSize, left);
    left -= n;
    if (kind === 'random') {
      yield randomBytes(n);
      continue;
    }
    const b = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const r = next();
      // Mostly words, sometimes raw bytes: compresses about 3-5x, like binaries and text.
      if (r % 16 === 0) {
        b[at++] = r >>> 24;
      } else {
        at += b.write((words[r % words.length] as string) + ' ', at, 'latin1');
      }
    }
    yield b;
  }
}

export interface RoundTrip {
  inputBytes: number;
  compressedBytes: number;
  inputSha256: string;
  outputSha256: string;
  /** The compressed bytes, when asked to keep them (small inputs only). */
  compressed?: Buffer;
}

/**
 * Writes `input` into `compressor` (respecting backpressure), pipes what comes out into
 * the real decompressor, and returns the sha256 of what went in and what came back.
 */
export async function roundTrip(
  compressor: Duplex,
  decompressCmd: string[],
  input: Iterable<Buffer>,
  opts: { keep?: boolean; teeTo?: Writable } = {},
): Promise<RoundTrip> {
  const [cmd, ...args] = decompressCmd as [string, ...string[]];
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const outHash = createHash('sha256');
  child.stdout.on('data', (b: Buffer) => outHash.update(b));
  const exited = once(child, 'close') as Promise<[number | null, string | null]>;

  const kept: Buffer[] = [];
  let compressedBytes = 0;
  compressor.on('data', (b: Buffer) => {
    compressedBytes += b.length;
    if (opts.keep) kept.push(b);
    opts.teeTo?.write(b);
    if (!child.stdin.write(b)) {
      compressor.pause();
      child.stdin.once('drain', () => compressor.resume());
    }
  });
  const ended = new Promise<void>((resolve, reject) => {
    compressor.on('end', () => {
      child.stdin.end();
      resolve();
    });
    compressor.on('error', reject);
  });

  const inHash = createHash('sha256');
  let inputBytes = 0;
  for (const chunk of input) {
    inHash.update(chunk);
    inputBytes += chunk.length;
    if (!compressor.write(chunk)) await once(compressor, 'drain');
  }
  compressor.end();
  await ended;
  const [code] = await exited;
  if (code !== 0) throw new Error(`${decompressCmd.join(' ')} exited ${code}: ${stderr}`);
  const r: RoundTrip = {
    inputBytes,
    compressedBytes,
    inputSha256: inHash.digest('hex'),
    outputSha256: outHash.digest('hex'),
  };
  if (opts.keep) r.compressed = Buffer.concat(kept);
  return r;
}

export const decompressors: Record<string, string[]> = {
  zstd: ['zstd', '-d', '-c', '-q'],
  xz: ['xz', '-d', '-c', '-q'],
  none: ['cat'],
};

/**
 * Counts the frames of a zstd stream by walking the format (RFC 8878): frame header,
 * blocks until the last-block flag, optional 4-byte checksum. Throws on anything else.
 */
export function zstdFrames(buf: Buffer): {
  frames: number;
  contentSizes: (number | null)[];
  checksums: boolean[];
} {
  let at = 0;
  let frames = 0;
  const contentSizes: (number | null)[] = [];
  const checksums: boolean[] = [];
  while (at < buf.length) {
    if (buf.readUInt32LE(at) !== 0xfd2fb528) throw new Error(`no zstd frame magic at ${at}`);
    at += 4;
    const fhd = buf[at++] as number;
    const fcsFlag = fhd >> 6;
    const single = (fhd >> 5) & 1;
    const checksum = (fhd >> 2) & 1;
    const dictFlag = fhd & 3;
    if (!single) at += 1; // window descriptor
    at += [0, 1, 2, 4][dictFlag] as number;
    const fcsBytes = fcsFlag === 0 ? single : [1, 2, 4, 8][fcsFlag];
    let size: number | null = null;
    if (fcsBytes === 1) size = buf[at] as number;
    else if (fcsBytes === 2) size = buf.readUInt16LE(at) + 256;
    else if (fcsBytes === 4) size = buf.readUInt32LE(at);
    else if (fcsBytes === 8) size = Number(buf.readBigUInt64LE(at));
    at += fcsBytes as number;
    for (;;) {
      const h = buf.readUIntLE(at, 3);
      at += 3;
      const last = h & 1;
      const type = (h >> 1) & 3;
      const bsize = h >> 3;
      at += type === 1 ? 1 : bsize; // RLE blocks store one byte
      if (last) break;
    }
    if (checksum) at += 4;
    frames++;
    contentSizes.push(size);
    checksums.push(checksum === 1);
  }
  if (at !== buf.length) throw new Error(`zstd stream overran its end: ${at} > ${buf.length}`);
  return { frames, contentSizes, checksums };
}

/** Resolves when the stream has emitted 'close'. */
export function closed(s: Readable | Duplex): Promise<void> {
  return s.closed ? Promise.resolve() : once(s, 'close').then(() => {});
}
