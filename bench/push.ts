/**
 * Loft's main job against what a user would do without it, measured in one run.
 *
 *   node dist/bench/push.js closure [--shape graph|chain|small] [--paths N] [--kb K]
 *        [--rtt-ms 0 --mbit 0] [--runs 3] [--before /work/main] [--salt S] [--prof DIR] [--dir]
 *        [--rgw-nodelay 1|0]
 *   node dist/bench/push.js lookup [--paths 10000] [--rtt-ms 0 --mbit 0] [--runs 3] [--before ROOT]
 *   node dist/bench/push.js rss [--gib 1,5]
 *
 * closure: a closure of the given shape (bench/shapes.ts; built offline with Nix, with a
 *   fresh salt unless --salt is given), then per run, each into a fresh RGW bucket:
 *   - `loft --upload-path` (this tree's bin/loft.js), then the same push again (all cached);
 *   - with --before ROOT, the same with ROOT/bin/loft.js (e.g. /work/main, built); the two
 *     take turns going first, run by run (with the same code on both sides, the side that
 *     went first was measured slower);
 *   - the alternative: `nix copy --to 'file://DIR?compression=zstd&secret-key=K'` then an
 *     8-way SDK upload of DIR (bench/upload-dir.ts), each its own process.
 *   With --rtt-ms/--mbit every S3 request goes through bench/netsim.ts (RTT added, each
 *   direction capped), which runs inside this process. Client CPU is user+sys of each
 *   process tree (/usr/bin/time); server CPU is RGW's (radosgw, OSD, mon) from /proc. A
 *   Loft push also prints its CPU by thread (main, worker threads, libuv's pool, V8's
 *   helpers, other), sampled from /proc/PID/task every 20 ms.
 *   --prof DIR adds `--cpu-prof` to the first Loft run (one profile per thread; summarise
 *   with `node dist/bench/profile-summary.js DIR`). --dir also compares pushing into a
 *   local directory: Loft's pipeline against `nix copy`.
 * rss: peak RSS of `loft --upload-path` pushing one path holding a single incompressible
 *   file of 1 GiB and of 5 GiB (RGW on bluestore, so the data need not fit in RAM).
 *
 * RGW runs with its beast frontend's tcp_nodelay=1 unless --rgw-nodelay 0 (scripts/rgw.sh:
 * without it each answer with a body on a reused connection waits about 40 ms).
 *
 * Every side runs as its own process, start-up included. The machine may be shared: the
 * load average is printed with every run; ratios within one run are what count.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { nixBuild, nixRequisites, runNix, salt as freshSalt } from '../test/support/nix.js';
import { repoRoot, startNixDaemon, startRgw, type Rgw } from '../test/support/fixtures.js';
import { cpuSeconds, loadLine, median, timed, type ThreadCpu, type Timing } from './measure.js';
import {
  measureRoundTrip,
  startNetSim,
  throughSim,
  type LinkShape,
  type NetSim,
} from './netsim.js';
import { buildShape, buildTinyClosure, specFromOptions } from './shapes.js';

const MB = 1e6;
const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    shape: { type: 'string', default: 'graph' },
    paths: { type: 'string' },
    kb: { type: 'string' },
    runs: { type: 'string', default: '3' },
    'rtt-ms': { type: 'string', default: '0' },
    mbit: { type: 'string', default: '0' },
    before: { type: 'string' },
    salt: { type: 'string' },
    prof: { type: 'string' },
    dir: { type: 'boolean', default: false },
    gib: { type: 'string', default: '1,5' },
    'rgw-nodelay': { type: 'string', default: '1' },
  },
});

async function createBucket(rgw: Rgw, name: string): Promise<void> {
  await runNix(join(repoRoot, 'scripts/rgw.sh'), ['bucket', rgw.dir, name]);
}

/** A loft.toml for `bucket`, named (with its index file) `name`. */
function loftToml(dir: string, endpoint: string, bucket: string, name = bucket): string {
  const file = join(dir, `${name}.toml`);
  writeFileSync(
    file,
    `[s3]\nbucket = "${bucket}"\nregion = "us-east-1"\nendpoint = "${endpoint}"\n` +
      `[loft]\nlocal_cache_path = "${join(dir, `${name}.db`)}"\nsigning_key_path = "${join(dir, 'sk')}"\n` +
      `compression = "zstd"\nskip_signed_by_keys = []\n`,
  );
  return file;
}

/** CPU seconds of RGW's daemons so far (radosgw, OSD, mon). */
function serverCpu(rgw: Rgw): number {
  let total = 0;
  for (const n of ['rgw', 'osd', 'mon']) {
    try {
      total += cpuSeconds(Number(readFileSync(join(rgw.dir, `${n}.pid`), 'utf8').trim()));
    } catch {
      // not running
    }
  }
  return total;
}

/** A bluestore RGW, a work directory with a signing key (sk, pk), and Loft's environment. */
async function withBenchRgw(
  fn: (rgw: Rgw, work: string, env: NodeJS.ProcessEnv) => Promise<void>,
): Promise<void> {
  // A daemon on the socket for the whole run (ours only if none answers), so no side
  // falls back to spawning `nix-daemon --stdio` per connection.
  const daemon = await startNixDaemon();
  const nodelay = values['rgw-nodelay'];
  console.log(
    `starting Ceph RGW (bluestore, beast tcp_nodelay=${nodelay}${nodelay === '0' ? ": Ceph's default, GETs on reused connections wait for delayed ACKs" : ''}) ...`,
  );
  const rgw = await startRgw({ OSD_STORE: 'bluestore', RGW_TCP_NODELAY: nodelay });
  const work = mkdtempSync(join(tmpdir(), 'loft-bench-push-'));
  try {
    await runNix('nix-store', [
      '--generate-binary-cache-key',
      'bench-1',
      join(work, 'sk'),
      join(work, 'pk'),
    ]);
    await fn(rgw, work, {
      ...process.env,
      AWS_ACCESS_KEY_ID: rgw.env.LOFT_TEST_S3_ACCESS_KEY,
      AWS_SECRET_ACCESS_KEY: rgw.env.LOFT_TEST_S3_SECRET_KEY,
    });
  } finally {
    await rgw.stop();
    await daemon.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

interface Side {
  name: string;
  wall: number[];
  cpu: number[];
  server: number[];
  threads: ThreadCpu[];
}

/**
 * The versions in the order run `r` runs them: with --before, each goes first every other
 * run, as the side that goes first was measured slower with the same code on both sides.
 */
const inRunOrder = <T>(lofts: T[], r: number): T[] => (r % 2 === 0 ? lofts : [...lofts].reverse());

const side = (name: string): Side => ({ name, wall: [], cpu: [], server: [], threads: [] });
const threadLine = (t: ThreadCpu) =>
  `main ${t.main.toFixed(2)}, workers ${t.workers.toFixed(2)}, pool ${t.pool.toFixed(2)}, V8 ${t.v8.toFixed(2)}, other ${t.other.toFixed(2)}`;
const s2 = (ms: number) => (ms / 1000).toFixed(2);
const load = loadLine;

async function closureBench(): Promise<void> {
  const spec = specFromOptions(values);
  const shape = spec.shape;
  const runs = Number(values.runs);
  const link = { rttMs: Number(values['rtt-ms']), mbit: Number(values.mbit) };
  const salt = values.salt ?? freshSalt();
  console.log(
    `building the ${shape} closure: ${spec.paths} paths of ~${(spec.bytesPerPath / 1000).toFixed(0)} KB (salt ${salt}) ...`,
  );
  const root = await buildShape(spec, salt);
  const closure = await nixRequisites([root]);
  const infos = JSON.parse(await runNix('nix', ['path-info', '--json', ...closure])) as {
    narSize: number;
  }[];
  const narBytes = infos.reduce((n, i) => n + i.narSize, 0);
  console.log(`closure: ${closure.length} paths, ${(narBytes / MB).toFixed(0)} MB of NAR`);
  console.log(
    `link: ${link.rttMs > 0 || link.mbit > 0 ? `${link.rttMs} ms RTT, ${link.mbit || 'unlimited'} Mbit/s per direction (bench/netsim.ts)` : 'loopback'}`,
  );
  if (link.rttMs > 0) console.log(await linkCheck(link));

  await withBenchRgw(async (rgw, work, env) => {
    let sim: NetSim | undefined;
    let endpoint = rgw.env.LOFT_TEST_S3_ENDPOINT!;
    if (link.rttMs > 0 || link.mbit > 0) {
      const u = new URL(endpoint);
      sim = await startNetSim({ host: u.hostname, port: Number(u.port) }, link);
      endpoint = throughSim(endpoint, sim);
    }
    const lofts: { label: string; bin: string }[] = [
      { label: 'loft', bin: join(repoRoot, 'bin/loft.js') },
    ];
    if (values.before)
      lofts.push({ label: 'loft-before', bin: join(values.before, 'bin/loft.js') });
    const sides = new Map<string, Side>();
    const get = (n: string) => sides.get(n) ?? sides.set(n, side(n)).get(n)!;
    const measure = async (name: string, fn: () => Promise<Timing>) => {
      const srv0 = serverCpu(rgw);
      const t = await fn();
      const s = get(name);
      s.wall.push(t.ms);
      s.cpu.push(t.cpu);
      s.server.push(serverCpu(rgw) - srv0);
      if (t.threads) s.threads.push(t.threads);
      return t;
    };
    try {
      for (let r = 0; r < runs; r++) {
        const line: string[] = [];
        for (const { label, bin } of inRunOrder(lofts, r)) {
          const bucket = `${label}-run${r}-${Date.now()}`;
          await createBucket(rgw, bucket);
          const toml = loftToml(work, endpoint, bucket);
          const prof =
            values.prof && r === 0 && label === 'loft'
              ? ['--cpu-prof', `--cpu-prof-dir=${values.prof}`]
              : [];
          const t = await measure(label, () =>
            timed('node', [...prof, bin, '-c', toml, '--upload-path', root], env, true),
          );
          const rounds0 = sim?.stats().rounds ?? 0;
          const c = await measure(`${label} re-push (cached)`, () =>
            timed('node', [bin, '-c', toml, '--upload-path', root], env),
          );
          const rounds = sim ? `, ${sim.stats().rounds - rounds0} round trips` : '';
          line.push(
            `${label} ${s2(t.ms)} s (cpu ${t.cpu.toFixed(2)}: ${threadLine(t.threads!)}), cached ${s2(c.ms)} s (cpu ${c.cpu.toFixed(2)}${rounds})`,
          );
        }
        const dir = join(work, `nix-run${r}`);
        const bucket = `nix-run${r}-${Date.now()}`;
        await createBucket(rgw, bucket);
        const nixArgs = ['--extra-experimental-features', 'nix-command', 'copy', '--to'];
        const srv0 = serverCpu(rgw);
        const a = await timed('nix', [
          ...nixArgs,
          `file://${dir}?compression=zstd&secret-key=${join(work, 'sk')}`,
          root,
        ]);
        const b = await timed(
          'node',
          [join(repoRoot, 'dist/bench/upload-dir.js'), dir, bucket, endpoint],
          env,
        );
        const alt = get('alternative (nix copy + 8-way upload)');
        alt.wall.push(a.ms + b.ms);
        alt.cpu.push(a.cpu + b.cpu);
        alt.server.push(serverCpu(rgw) - srv0);
        line.push(
          `alternative ${s2(a.ms + b.ms)} s (nix copy ${s2(a.ms)} s cpu ${a.cpu.toFixed(2)}; upload ${s2(b.ms)} s cpu ${b.cpu.toFixed(2)})`,
        );
        rmSync(dir, { recursive: true, force: true });
        if (values.dir) {
          const d3 = join(work, `loftdir-run${r}`);
          mkdirSync(d3);
          await measure('loft -> dir', () =>
            timed('node', [
              join(repoRoot, 'dist/bench/push-to-dir.js'),
              d3,
              join(work, 'sk'),
              root,
            ]),
          );
          const d4 = join(work, `nixdir-run${r}`);
          await measure('nix copy -> dir', () =>
            timed('nix', [
              ...nixArgs,
              `file://${d4}?compression=zstd&secret-key=${join(work, 'sk')}`,
              root,
            ]),
          );
          rmSync(d3, { recursive: true, force: true });
          rmSync(d4, { recursive: true, force: true });
        }
        console.log(`run ${r + 1} (load ${load()}): ${line.join('; ')}`);
      }
    } finally {
      await sim?.close();
    }
    const alt = get('alternative (nix copy + 8-way upload)');
    console.log(
      `\nmedians of ${runs} runs (${closure.length} paths, ${(narBytes / MB).toFixed(0)} MB NAR; load now ${load()}):`,
    );
    for (const s of sides.values()) {
      const ratio = (median(s.wall) / median(alt.wall)).toFixed(2);
      const cpuRatio = (median(s.cpu) / median(alt.cpu)).toFixed(2);
      console.log(
        `  ${s.name.padEnd(40)} wall ${s2(median(s.wall))} s (x${ratio} of alternative)  ` +
          `client cpu ${median(s.cpu).toFixed(2)} s (x${cpuRatio})  server cpu ${median(s.server).toFixed(2)} s`,
      );
      if (s.threads.length > 0) {
        const m = (k: keyof ThreadCpu) => median(s.threads.map((t) => t[k]));
        console.log(
          `  ${''.padEnd(40)} its threads' cpu: ${threadLine({ main: m('main'), workers: m('workers'), pool: m('pool'), v8: m('v8'), other: m('other') })}`,
        );
      }
    }
    if (sim) {
      const st = sim.stats();
      console.log(
        `  link carried ${(st.up / MB).toFixed(0)} MB up, ${(st.down / MB).toFixed(1)} MB down, ${st.connections} connections`,
      );
    }
  });
}

async function rssBench(): Promise<void> {
  const sizes = values.gib.split(',').map(Number);
  await withBenchRgw(async (rgw, work, env) => {
    for (const gib of sizes) {
      console.log(
        `building a path with one ${gib} GiB incompressible file (cached after the first run) ...`,
      );
      const [p] = await nixBuild(
        `mk "bench-${gib}gib" "mkdir $out; head -c ${gib * 1024 ** 3} /dev/urandom > $out/blob"`,
        'bench-rss-v1',
      );
      const bucket = `rss-${gib}gib-${Date.now()}`;
      await createBucket(rgw, bucket);
      const r = await timed(
        'node',
        [
          join(repoRoot, 'bin/loft.js'),
          '-c',
          loftToml(work, rgw.env.LOFT_TEST_S3_ENDPOINT!, bucket),
          '--upload-path',
          p!,
        ],
        env,
      );
      const limit = gib <= 1 ? 250 : 300;
      console.log(
        `${gib} GiB NAR: peak RSS ${r.peakRssMb.toFixed(0)} MB (target < ${limit}), ` +
          `${(r.ms / 1000).toFixed(1)} s, ${((gib * 1024 ** 3) / MB / (r.ms / 1000)).toFixed(0)} MB/s`,
      );
      await runNix(join(repoRoot, 'scripts/rgw.sh'), ['gc', rgw.dir]).catch(() => {});
    }
  });
}

/**
 * lookup: deciding what is missing from a closure of tiny paths (default 10,000) that the
 * cache holds entirely. The bucket is filled once (this tree's Loft, straight to RGW); then
 * per run and Loft tree, each a whole process through the link: with a fresh (cold) local
 * index `--dry-run` (the plan alone) and the push (plan and lease protocol), then the same
 * two again with the index that push left (warm). Round trips are counted by the netsim.
 */
async function lookupBench(): Promise<void> {
  const n = Number(values.paths ?? 10_000);
  const runs = Number(values.runs);
  const link = { rttMs: Number(values['rtt-ms']), mbit: Number(values.mbit) };
  const salt = values.salt ?? freshSalt();
  console.log(`adding ${n} tiny paths to the store (salt ${salt}) ...`);
  const root = await buildTinyClosure(n, salt);
  console.log(`closure of ${root}: ${(await nixRequisites([root])).length} paths`);
  await withBenchRgw(async (rgw, work, env) => {
    const direct = rgw.env.LOFT_TEST_S3_ENDPOINT!;
    const bucket = `lookup-${Date.now()}`;
    await createBucket(rgw, bucket);
    const fill = await timed(
      'node',
      [join(repoRoot, 'bin/loft.js'), '-c', loftToml(work, direct, bucket), '--upload-path', root],
      env,
    );
    console.log(`filled the bucket in ${s2(fill.ms)} s (load ${load()})`);
    // A netsim even at 0 ms: it counts the round trips.
    const u = new URL(direct);
    const sim = await startNetSim({ host: u.hostname, port: Number(u.port) }, link);
    const endpoint = throughSim(direct, sim);
    console.log(
      `link: ${link.rttMs} ms RTT, ${link.mbit || 'unlimited'} Mbit/s (bench/netsim.ts; round trips counted there when RTT > 0)`,
    );
    if (link.rttMs > 0) console.log(await linkCheck(link));
    const lofts: { label: string; bin: string }[] = [
      { label: 'loft', bin: join(repoRoot, 'bin/loft.js') },
    ];
    if (values.before)
      lofts.push({ label: 'loft-before', bin: join(values.before, 'bin/loft.js') });
    const results = new Map<string, { ms: number[]; cpu: number[]; rounds: number[] }>();
    try {
      for (let r = 0; r < runs; r++) {
        const line: string[] = [];
        for (const { label, bin } of inRunOrder(lofts, r)) {
          // A config per run: its own index file, so "cold" is an index that never saw this bucket.
          const toml = loftToml(work, endpoint, bucket, `${bucket}-${label}-${r}`);
          for (const [step, extra] of [
            ['cold --dry-run', ['--dry-run']],
            ['cold push', []],
            ['warm --dry-run', ['--dry-run']],
            ['warm push', []],
          ] as const) {
            const rounds0 = sim.stats().rounds;
            // --prof: the first run's steps of this tree, one profile directory per step.
            const prof =
              values.prof && r === 0 && label === 'loft'
                ? ['--cpu-prof', `--cpu-prof-dir=${join(values.prof, step.replace(/\W+/g, '-'))}`]
                : [];
            const t = await timed(
              'node',
              [...prof, bin, '-c', toml, '--upload-path', root, ...extra],
              env,
            );
            const rounds = sim.stats().rounds - rounds0;
            const key = `${label} ${step}`;
            const e =
              results.get(key) ?? results.set(key, { ms: [], cpu: [], rounds: [] }).get(key)!;
            e.ms.push(t.ms);
            e.cpu.push(t.cpu);
            e.rounds.push(rounds);
            // Without a delay, gaps of processing time would count as round trips.
            line.push(`${step} ${s2(t.ms)} s${link.rttMs > 0 ? `/${rounds} rt` : ''}`);
          }
          line[line.length - 4] = `${label}: ${line[line.length - 4]}`;
        }
        console.log(`run ${r + 1} (load ${load()}): ${line.join(', ')}`);
      }
    } finally {
      await sim.close();
    }
    console.log(`\nmedians of ${runs} runs (${n + 1} paths, whole process; load now ${load()}):`);
    for (const [k, e] of results) {
      console.log(
        `  ${k.padEnd(30)} ${s2(median(e.ms))} s (client cpu ${median(e.cpu).toFixed(2)} s)` +
          (link.rttMs > 0
            ? `   ${median(e.rounds)} round trips (max ${Math.max(...e.rounds)})`
            : ''),
      );
    }
  });
}

/** The simulator's own round trip, printed with each run: the link it measured through. */
async function linkCheck(link: LinkShape): Promise<string> {
  const rt = await measureRoundTrip(link);
  return `link check: 50 echoes through the simulator took ${rt.mean.toFixed(2)} ms on average (median ${rt.median.toFixed(2)} ms; set: ${link.rttMs} ms)`;
}

if (positionals[0] === 'closure') await closureBench();
else if (positionals[0] === 'lookup') await lookupBench();
else if (positionals[0] === 'rss') await rssBench();
else {
  console.error('usage: node dist/bench/push.js closure|lookup|rss [options]');
  process.exitCode = 2;
}
