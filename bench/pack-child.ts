/**
 * One side of bench/pack.ts, as a process of its own: packs every NAR of a job file with
 * the packer pool of a built Loft tree (TREE/dist/src/pack), freeing each output chunk as
 * an answered PUT does, and prints one JSON line: the packing's wall time and, by thread
 * kind, CPU seconds and minor page faults (read from /proc before the threads stop).
 *
 *   node dist/bench/pack-child.js TREE JOB_FILE THREADS LANES
 *
 * JOB_FILE holds [{ path, narHash, narSize }]; LANES NARs are packed at once.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { threadKind, threadStats, type ThreadKind } from './measure.js';

export interface PackJob {
  path: string;
  narHash: string;
  narSize: number;
}

export interface KindStat {
  cpu: number;
  minflt: number;
}

export interface PackChildResult {
  ms: number;
  threads: Record<ThreadKind, KindStat>;
}

const [tree, jobFile, threadsArg, lanesArg] = process.argv.slice(2);
if (!tree || !jobFile || !threadsArg || !lanesArg) {
  console.error('usage: pack-child TREE JOB_FILE THREADS LANES');
  process.exit(2);
}
const fromTree = (rel: string) => pathToFileURL(join(tree, 'dist/src', rel)).href;
// Another tree's modules: the same shape as this tree's, which the types are taken from.
const { NarPacker } = (await import(
  fromTree('pack/pack-pool.js')
)) as typeof import('../src/pack/pack-pool.js');
const { releaseNow } = (await import(
  fromTree('util/releasable-buffers.js')
)) as typeof import('../src/util/releasable-buffers.js');

const jobs = JSON.parse(readFileSync(jobFile, 'utf8')) as PackJob[];
const packer = new NarPacker({ size: Number(threadsArg) });
const t0 = performance.now();
let next = 0;
async function lane(): Promise<void> {
  while (next < jobs.length) {
    const job = jobs[next++]!;
    const stream = packer.pack({
      path: job.path,
      compression: { name: 'zstd', level: 3 },
      narHash: job.narHash,
      narSize: job.narSize,
    });
    for await (const chunk of stream as AsyncIterable<Buffer>) releaseNow(chunk);
  }
}
await Promise.all(Array.from({ length: Number(lanesArg) }, lane));
const ms = performance.now() - t0;

const zero = (): KindStat => ({ cpu: 0, minflt: 0 });
const threads: Record<ThreadKind, KindStat> = {
  main: zero(),
  workers: zero(),
  pool: zero(),
  v8: zero(),
  other: zero(),
};
for (const [tid, t] of threadStats(process.pid)) {
  const kind = threads[threadKind(process.pid, tid, t.comm)];
  kind.cpu += t.cpu;
  kind.minflt += t.minflt;
}
const result: PackChildResult = { ms, threads };
await packer.shutdown();
console.log(JSON.stringify(result));
