/**
 * zstd throughput and peak RSS: Loft's compressor (worker pool) against `zstd -3 -T0` on
 * the same 512 MiB of a realistic mix (ELF binaries and libraries, text, already
 * compressed files, in the order a walk of the system finds them). Prints MB/s of input
 * peak RSS and (ours) CPU seconds per GB of input for each, and the ratio ours/CLI.
 *
 *   node dist/bench/compress-zstd.js [--size-mb N] [--runs N] [--level N] [--only ROW,ROW]
 *
 * Ours is the compressor stream of the daemon path (xz aside, pushes normally compress in
 * src/pack's threads, one single-threaded zstd stream per NAR, as here): read 1 MiB chunks -> sha256 -> compressor ->
 * sha256 -> file, each run in a fresh child process so its peak RSS is its own. The CLI
 * reads the file and writes its output file (no hashing). Rows:
 *   ours            one stream (the lone-NAR case; single-threaded zstd)
 *   ours-4streams   four concurrent streams of a quarter each (many NARs at once)
 *   cli -T0 / -T1   the zstd program, all cores / one thread
 * Runs alternate between rows; best and median are shown. The machine is shared, so
 * expect noise; the lead re-measures on a quiet machine.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import {
  closeSync,
  createReadStream,
  createWriteStream,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { ZstdPool } from '../src/compress/zstd-pool.js';
import { ZstdCompressStream } from '../src/compress/zstd-stream.js';
import { median as medianOf, watchPeakRss } from './measure.js';

const MiB = 1024 * 1024;

interface Args {
  sizeMb: number;
  runs: number;
  level: number;
  /** Only these rows (comma-separated names). */
  only: string[] | undefined;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { sizeMb: 512, runs: 3, level: 3, only: undefined };
  for (let i = 0; i < argv.length; i += 2) {
    const a = argv[i];
    const v = Number(argv[i + 1]);
    if (a === '--size-mb' && v > 0) args.sizeMb = v;
    else if (a === '--runs' && v > 0) args.runs = v;
    else if (a === '--level' && v > 0) args.level = v;
    else if (a === '--only' && argv[i + 1]) args.only = (argv[i + 1] as string).split(',');
    else throw new Error(`usage: compress-zstd.js [--size-mb N] [--runs N] [--level N] (bad ${a})`);
  }
  return args;
}

/** Regular files under `root`, sorted, skipping what cannot be read. */
function walk(root: string, out: string[] = []): string[] {
  let names: string[];
  try {
    names = readdirSync(root).sort();
  } catch {
    return out;
  }
  for (const n of names) {
    const p = join(root, n);
    try {
      const st = statSync(p, { throwIfNoEntry: false });
      if (st === undefined) continue;
      if (st.isDirectory() && !st.isSymbolicLink()) walk(p, out);
      else if (st.isFile() && st.size > 0 && st.size < 64 * MiB) out.push(p);
    } catch {
      // unreadable: skip
    }
  }
  return out;
}

/**
 * Writes `size` bytes of whole files from library, executable and text/data trees (about
 * 40/30/30 by bytes), so the mix resembles a closure of store paths. Repeats files when
 * the system has fewer.
 */
function makeMix(file: string, size: number): string {
  const roots = [
    ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/run/current-system/sw/lib'],
    ['/usr/bin', '/usr/sbin', '/run/current-system/sw/bin'],
    ['/usr/share', '/usr/include', '/usr/lib/python3'],
  ].map((group) => group.flatMap((r) => walk(r)));
  if (roots.every((r) => r.length === 0)) throw new Error('no system files found for the mix');
  // Share of the bytes each group should make up (libraries, executables, text/data).
  const share = [0.4, 0.3, 0.3];
  const next = roots.map(() => 0);
  const fd = openSync(file, 'w');
  let written = 0;
  const counts = roots.map(() => 0);
  try {
    while (written < size) {
      // The group furthest below its share goes next, so the mix holds by bytes.
      let group = -1;
      let worst = Infinity;
      roots.forEach((list, g) => {
        const have = (counts[g] as number) / (share[g] as number);
        if (list.length > 0 && have < worst) [group, worst] = [g, have];
      });
      const list = roots[group] as string[];
      const path = list[(next[group] as number) % list.length] as string;
      next[group] = (next[group] as number) + 1;
      let data: Buffer;
      try {
        data = readFileSync(path);
      } catch {
        continue;
      }
      const n = Math.min(data.length, size - written);
      writeSync(fd, data, 0, n);
      written += n;
      counts[group] = (counts[group] as number) + n;
    }
  } finally {
    closeSync(fd);
  }
  return counts
    .map((c, i) => `${['libs', 'bins', 'text/data'][i]} ${(c / MiB).toFixed(0)} MiB`)
    .join(', ');
}

interface Result {
  seconds: number;
  maxRssMiB: number;
  outBytes: number;
  /** User + system CPU of the whole process (every thread); ours only. */
  cpuSeconds?: number;
}

/** Child side: compress `file` (or `streams` parts of it) like the pipeline would. */
async function child(file: string, out: string, level: number, mode: string): Promise<void> {
  const size = statSync(file).size;
  const streams = mode === '4streams' ? 4 : 1;
  const pool = new ZstdPool();
  const hasher = () => {
    const h = createHash('sha256');
    return new Transform({
      transform(c: Buffer, _e, cb) {
        h.update(c);
        cb(null, c);
      },
    });
  };
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const part = Math.ceil(size / streams);
  await Promise.all(
    Array.from({ length: streams }, (_, i) =>
      pipeline(
        createReadStream(file, {
          start: i * part,
          end: Math.min(size, (i + 1) * part) - 1,
          highWaterMark: MiB,
        }),
        hasher(),
        new ZstdCompressStream(pool, level, { maxInflight: 2 }),
        hasher(),
        createWriteStream(streams === 1 ? out : `${out}.${i}`),
      ),
    ),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await pool.shutdown();
  let outBytes = 0;
  for (let i = 0; i < streams; i++) outBytes += statSync(streams === 1 ? out : `${out}.${i}`).size;
  const r: Result = {
    seconds,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
    outBytes,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
  process.stdout.write(JSON.stringify(r));
}

async function runOurs(file: string, out: string, level: number, mode: string): Promise<Result> {
  const self = fileURLToPath(import.meta.url);
  const p = spawn(process.execPath, [self, '--child', file, out, String(level), mode], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let text = '';
  p.stdout.setEncoding('utf8').on('data', (d: string) => (text += d));
  const [code] = (await once(p, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`bench child (${mode}) exited ${code}`);
  return JSON.parse(text) as Result;
}

/** The zstd CLI, with its peak RSS from /proc. */
async function runCli(file: string, out: string, level: number, threads: number): Promise<Result> {
  const t0 = performance.now();
  const p = spawn('zstd', [`-${level}`, `-T${threads}`, '-q', '-f', '-o', out, file], {
    stdio: 'inherit',
  });
  const peak = watchPeakRss(p.pid!);
  const [code] = (await once(p, 'exit')) as [number | null];
  const maxRssMiB = peak.stop();
  const seconds = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`zstd exited ${code}`);
  return { seconds, maxRssMiB, outBytes: statSync(out).size };
}

function sha256File(cmd: string, args: string[]): string {
  return execFileSync(
    'sh',
    ['-c', `${[cmd, ...args].map((a) => `'${a}'`).join(' ')} | sha256sum`],
    {
      encoding: 'utf8',
      maxBuffer: 1024,
    },
  ).split(' ')[0] as string;
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') {
    const [, , , file, out, level, mode] = process.argv;
    await child(file as string, out as string, Number(level), mode as string);
    return;
  }
  const args = parseArgs(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), 'loft-bench-zstd-'));
  try {
    const input = join(dir, 'mix');
    const size = args.sizeMb * MiB;
    const composition = makeMix(input, size);
    console.log(
      `input: ${args.sizeMb} MiB (${composition}), level ${args.level}, ${args.runs} runs`,
    );
    // Warm the page cache so no row pays for the disk.
    await pipeline(createReadStream(input), createWriteStream('/dev/null'));

    // Check once that our output is exactly the input (decoded by the real zstd).
    const check = join(dir, 'check.zst');
    await runOurs(input, check, args.level, 'default');
    const want = sha256File('cat', [input]);
    const got = sha256File('zstd', ['-d', '-c', '-q', check]);
    if (got !== want) throw new Error('our output does not decompress to the input');
    rmSync(check);

    const rows: Record<string, () => Promise<Result>> = {
      ours: () => runOurs(input, join(dir, 'o.zst'), args.level, 'default'),
      'ours-4streams': () => runOurs(input, join(dir, 'o.zst'), args.level, '4streams'),
      'cli -T0': () => runCli(input, join(dir, 'c.zst'), args.level, 0),
      'cli -T1': () => runCli(input, join(dir, 'c.zst'), args.level, 1),
    };
    if (args.only !== undefined) {
      for (const name of Object.keys(rows)) if (!args.only.includes(name)) delete rows[name];
    }
    const results: Record<string, Result[]> = {};
    for (let r = 0; r < args.runs; r++) {
      for (const [name, run] of Object.entries(rows)) (results[name] ??= []).push(await run());
    }
    const mbs = (r: Result) => size / 1e6 / r.seconds;
    const summary: Record<string, { best: number; median: number; rss: number; ratio: number }> =
      {};
    console.log('row              best MB/s  median MB/s  peak RSS MiB  size ratio  CPU s/GB');
    for (const [name, rs] of Object.entries(results)) {
      const speeds = rs.map(mbs).sort((a, b) => a - b);
      const best = speeds[speeds.length - 1] as number;
      const median = speeds[Math.floor(speeds.length / 2)] as number;
      const rss = Math.max(...rs.map((r) => r.maxRssMiB));
      const ratio = (rs[0] as Result).outBytes / size;
      summary[name] = { best, median, rss, ratio };
      const cpus = rs.flatMap((r) => (r.cpuSeconds === undefined ? [] : [r.cpuSeconds]));
      const cpuPerGb = cpus.length > 0 ? (medianOf(cpus) / (size / 1e9)).toFixed(2) : '-';
      console.log(
        `${name.padEnd(16)} ${best.toFixed(0).padStart(9)}  ${median.toFixed(0).padStart(11)}` +
          `  ${rss.toFixed(0).padStart(12)}  ${ratio.toFixed(3).padStart(10)}  ${cpuPerGb.padStart(8)}`,
      );
    }
    const ours = summary.ours;
    const cli = summary['cli -T0'];
    if (ours === undefined || cli === undefined) return;
    console.log(
      `ratio ours/cli -T0: throughput ${(ours.best / cli.best).toFixed(2)} (best), ` +
        `${(ours.median / cli.median).toFixed(2)} (median); peak RSS ${(ours.rss / cli.rss).toFixed(1)}x`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
