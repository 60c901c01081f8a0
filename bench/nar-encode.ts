/**
 * NAR encode + sha256 throughput: Loft's encoder (in process, hashing every chunk) against
 * `nix-store --dump DIR | sha256sum` on the same ~1 GB tree of large, medium and many small
 * files. Prints MB/s for both and the ratio ours/nix (target >= 0.8), then the same for the
 * small-file part alone, then both encoders without hashing (coreutils sha256sum may lack
 * SHA-NI and bound the Nix side; this line shows the encoders' own gap).
 *
 *   node dist/bench/nar-encode.js [--size-mb N] [--runs N]
 *
 * The tree lives in a temp dir and is removed at the end. Both sides read from the page
 * cache after a warm-up run, so this measures CPU and syscall cost, not the disk. Runs
 * alternate between the two sides and the best of each is reported, which damps (but on a
 * shared machine does not remove) noise from other load.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { dumpPath } from '../src/store/nar-fs.js';

interface Args {
  sizeMb: number;
  runs: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { sizeMb: 1024, runs: 3 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = Number(argv[i + 1]);
    if (a === '--size-mb' && v > 0) args.sizeMb = v;
    else if (a === '--runs' && v > 0) args.runs = v;
    else throw new Error(`usage: nar-encode.js [--size-mb N] [--runs N] (bad argument ${a})`);
    i++;
  }
  return args;
}

/** Deterministic pseudo-random bytes, cheap to make (random content defeats nothing here). */
function block(size: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeInt32LE(x | 0, i);
  }
  return b;
}

function writeBig(path: string, size: number, seed: number): void {
  const chunk = block(1 << 20, seed);
  const fd = openSync(path, 'w');
  try {
    for (let left = size; left > 0; left -= chunk.length)
      writeSync(fd, chunk, 0, Math.min(left, chunk.length));
  } finally {
    closeSync(fd);
  }
}

/**
 * ~60% in a few large files, ~20% in medium ones, ~20% in many small files (0-16 KiB) spread
 * over nested directories, plus symlinks and executables.
 */
function buildTree(root: string, totalMb: number): { files: number; bytes: number } {
  const total = totalMb * (1 << 20);
  let files = 0;
  let bytes = 0;
  mkdirSync(join(root, 'large'), { recursive: true });
  for (let i = 0; i < 4; i++) {
    const size = Math.floor((total * 0.6) / 4);
    writeBig(join(root, 'large', `blob${i}.bin`), size, i + 1);
    files++;
    bytes += size;
  }
  mkdirSync(join(root, 'medium'));
  for (let i = 0; i < 40; i++) {
    const size = Math.floor((total * 0.2) / 40);
    writeBig(join(root, 'medium', `lib${i}.so`), size, 100 + i);
    if (i % 4 === 0) chmodSync(join(root, 'medium', `lib${i}.so`), 0o755);
    files++;
    bytes += size;
  }
  const pool = block(1 << 20, 7);
  const smallBudget = total * 0.2;
  let n = 0;
  for (let small = 0; small < smallBudget; n++) {
    const dir = join(root, 'share', `pkg${n % 50}`, `sub${Math.floor(n / 50) % 20}`);
    if (n < 1000) mkdirSync(dir, { recursive: true });
    const size = (n * 7919) % (16 * 1024);
    const off = (n * 131) % (pool.length - size);
    writeFileSync(join(dir, `file${n}.txt`), pool.subarray(off, off + size));
    small += size;
    bytes += size;
    files++;
    if (n % 500 === 0) {
      // A few executables and symlinks along the way.
      writeFileSync(join(dir, `script${n}`), '#!/bin/sh\n', { mode: 0o755 });
      symlinkSync(`file${n}.txt`, join(dir, `link${n}`));
    }
  }
  return { files, bytes };
}

async function ours(
  dir: string,
  hashing = true,
): Promise<{ seconds: number; size: number; hash: string }> {
  const t0 = performance.now();
  const h = createHash('sha256');
  let size = 0;
  for await (const c of dumpPath(dir)) {
    if (hashing) h.update(c);
    size += c.length;
  }
  const hash = h.digest('hex');
  return { seconds: (performance.now() - t0) / 1000, size, hash };
}

function nix(dir: string, hashing = true): Promise<{ seconds: number; hash: string }> {
  const script = hashing
    ? 'nix-store --dump "$1" | sha256sum'
    : 'nix-store --dump "$1" > /dev/null';
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn('sh', ['-c', script, 'sh', dir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`nix-store --dump | sha256sum exited ${code}`));
      resolve({ seconds: (performance.now() - t0) / 1000, hash: out.split(' ')[0]! });
    });
  });
}

/** Alternate runs of both sides on `dir`; print MB/s; return the ratio of the best runs. */
async function compare(dir: string, runs: number, label: string, hashing = true): Promise<number> {
  // Warm-up: page cache, JIT; and a correctness check.
  const w = await ours(dir, hashing);
  const wn = await nix(dir, hashing);
  if (hashing && w.hash !== wn.hash)
    throw new Error(`NAR hashes differ: ours ${w.hash}, nix ${wn.hash}`);
  const mb = w.size / 1e6;
  console.log(
    hashing
      ? `${label}: NAR ${mb.toFixed(0)} MB, sha256 ${w.hash} (identical to nix-store --dump)`
      : `${label}: NAR ${mb.toFixed(0)} MB`,
  );
  const oursRuns: number[] = [];
  const nixRuns: number[] = [];
  for (let i = 0; i < runs; i++) {
    nixRuns.push((await nix(dir, hashing)).seconds);
    oursRuns.push((await ours(dir, hashing)).seconds);
    console.log(
      `  run ${i + 1}: ours ${(mb / oursRuns[i]!).toFixed(0)} MB/s, nix ${(mb / nixRuns[i]!).toFixed(0)} MB/s`,
    );
  }
  const bestOurs = mb / Math.min(...oursRuns);
  const bestNix = mb / Math.min(...nixRuns);
  console.log(`  ours: ${bestOurs.toFixed(0)} MB/s (in process)`);
  console.log(
    `  nix:  ${bestNix.toFixed(0)} MB/s (nix-store --dump ${hashing ? '| sha256sum' : '> /dev/null'})`,
  );
  return bestOurs / bestNix;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const root = mkdtempSync(join(tmpdir(), 'loft-bench-nar-'));
  const tree = join(root, 'tree');
  const stop = () => rmSync(root, { recursive: true, force: true });
  process.once('SIGINT', () => {
    stop();
    process.exit(130);
  });
  try {
    mkdirSync(tree);
    const t0 = performance.now();
    const { files, bytes } = buildTree(tree, args.sizeMb);
    console.log(
      `tree: ${files} files, ${(bytes / 1e6).toFixed(0)} MB of contents (built in ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
    );

    const main = await compare(tree, args.runs, 'whole tree');
    // The many-small-files part alone: per-file cost, where a NAR writer is weakest.
    const small = await compare(join(tree, 'share'), args.runs, 'small files only');
    // Without hashing: the encoders alone (sha256sum, without SHA-NI, often bounds the above).
    const encodeOnly = await compare(
      tree,
      args.runs,
      'encode only, no sha256 (nix: --dump > /dev/null)',
      false,
    );
    console.log(
      `ratio ours/nix: ${main.toFixed(2)} (whole tree; target >= 0.80), ${small.toFixed(2)} (small files only), ` +
        `${encodeOnly.toFixed(2)} (encode only, no hashing); best of ${args.runs}, shared machine: noisy`,
    );
  } finally {
    stop();
  }
}

await main();
