/**
 * Packing alone: reading, hashing and compressing a closure's NARs on Loft's packer
 * threads, with no upload, against `nix copy` doing the same into a local directory.
 *
 *   node dist/bench/pack.js [--shape graph|chain|small] [--paths N] [--kb K] [--runs 5]
 *        [--threads 2] [--lanes 8] [--before ROOT] [--salt S]
 *
 * Each run packs the whole closure in a fresh process per Loft tree (bench/pack-child.ts,
 * which loads that tree's packer pool, so ROOT may be any built tree), the trees taking
 * turns going first, then times `nix copy --to file://DIR?compression=zstd` with Nix's
 * local store opened directly (no daemon), so its CPU counts serialising the NARs as
 * Loft's counts reading them. Loft's figures are the packing's own (the process's start
 * not included), by thread kind, with minor page faults: most of them are first touches
 * of memory, which on some virtual machines cost more than the work done in it.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { nixRequisites, runNix, salt as freshSalt } from '../test/support/nix.js';
import { repoRoot } from '../test/support/fixtures.js';
import { loadLine, median, timed } from './measure.js';
import type { KindStat, PackChildResult, PackJob } from './pack-child.js';
import { buildShape, specFromOptions } from './shapes.js';

const { values } = parseArgs({
  options: {
    shape: { type: 'string', default: 'graph' },
    paths: { type: 'string' },
    kb: { type: 'string' },
    runs: { type: 'string', default: '5' },
    threads: { type: 'string', default: '2' },
    lanes: { type: 'string', default: '8' },
    before: { type: 'string' },
    salt: { type: 'string' },
  },
});

const spec = specFromOptions(values);
const shape = spec.shape;
const runs = Number(values.runs);
const salt = values.salt ?? freshSalt();

console.log(`building the ${shape} closure (salt ${salt}) ...`);
const root = await buildShape(spec, salt);
const closure = await nixRequisites([root]);
const infos = JSON.parse(await runNix('nix', ['path-info', '--json', ...closure])) as {
  path: string;
  narHash: string;
  narSize: number;
}[];
const jobs: PackJob[] = infos.map((i) => ({
  path: i.path,
  narHash: i.narHash,
  narSize: i.narSize,
}));
const narMb = jobs.reduce((n, j) => n + j.narSize, 0) / 1e6;
console.log(
  `closure: ${jobs.length} paths, ${narMb.toFixed(0)} MB of NAR; ${values.threads} packer threads, ${values.lanes} NARs at once`,
);

const work = mkdtempSync(join(tmpdir(), 'loft-bench-pack-'));
const jobFile = join(work, 'jobs.json');
writeFileSync(jobFile, JSON.stringify(jobs));
const trees = [{ label: 'loft', root: repoRoot }];
if (values.before) trees.push({ label: 'loft-before', root: values.before });

const exec = promisify(execFile);
async function packOnce(tree: string): Promise<PackChildResult> {
  const { stdout } = await exec(
    process.execPath,
    [join(repoRoot, 'dist/bench/pack-child.js'), tree, jobFile, values.threads, values.lanes],
    { maxBuffer: 1 << 20 },
  );
  return JSON.parse(stdout.trim().split('\n').pop()!) as PackChildResult;
}

const cpuOf = (r: PackChildResult) => Object.values(r.threads).reduce((n, k) => n + k.cpu, 0);
const packing = (r: PackChildResult): KindStat => ({
  cpu: r.threads.workers.cpu + r.threads.pool.cpu,
  minflt: r.threads.workers.minflt + r.threads.pool.minflt,
});
const results = new Map<string, PackChildResult[]>();
const nixCopy: { ms: number; cpu: number }[] = [];
try {
  for (let r = 0; r < runs; r++) {
    const line: string[] = [];
    for (const { label, root: tree } of r % 2 === 0 ? trees : [...trees].reverse()) {
      const res = await packOnce(tree);
      results.set(label, [...(results.get(label) ?? []), res]);
      const p = packing(res);
      line.push(
        `${label} ${(res.ms / 1000).toFixed(2)} s (cpu ${cpuOf(res).toFixed(2)}: packers ${res.threads.workers.cpu.toFixed(2)}, pool ${res.threads.pool.cpu.toFixed(2)}, main ${res.threads.main.cpu.toFixed(2)}, V8 ${res.threads.v8.cpu.toFixed(2)}; packers' and pool's page faults ${p.minflt})`,
      );
    }
    const dir = join(work, `nix-${r}`);
    const env = { ...process.env, NIX_REMOTE: '' };
    const t = await timed(
      'nix',
      [
        '--extra-experimental-features',
        'nix-command',
        'copy',
        '--to',
        `file://${dir}?compression=zstd`,
        root,
      ],
      env,
    );
    nixCopy.push({ ms: t.ms, cpu: t.cpu });
    rmSync(dir, { recursive: true, force: true });
    line.push(`nix copy ${(t.ms / 1000).toFixed(2)} s (cpu ${t.cpu.toFixed(2)})`);
    console.log(`run ${r + 1} (load ${loadLine()}): ${line.join('; ')}`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

const nixCpu = median(nixCopy.map((n) => n.cpu));
const nixMs = median(nixCopy.map((n) => n.ms));
console.log(`\nmedians of ${runs} runs (load now ${loadLine()}):`);
for (const [label, rs] of results) {
  const ms = median(rs.map((r) => r.ms));
  const cpu = median(rs.map(cpuOf));
  const pack = median(rs.map((r) => packing(r).cpu));
  const faults = Math.round(median(rs.map((r) => packing(r).minflt)));
  console.log(
    `  ${label.padEnd(12)} wall ${(ms / 1000).toFixed(2)} s (x${(ms / nixMs).toFixed(2)} of nix copy)  cpu ${cpu.toFixed(2)} s (x${(cpu / nixCpu).toFixed(2)})  packers and pool ${pack.toFixed(2)} s, ${faults} page faults`,
  );
}
console.log(
  `  ${'nix copy'.padEnd(12)} wall ${(nixMs / 1000).toFixed(2)} s  cpu ${nixCpu.toFixed(2)} s (writes the compressed NARs and narinfos to a directory)`,
);
