/**
 * Loft's main job against what a user would do without it, measured in one run.
 *
 *   node dist/bench/push.js closure [--paths 200] [--mb 190] [--runs 3]
 *   node dist/bench/push.js rss [--gib 1,5]
 *
 * closure: a 200-path, ~190 MB closure (half random, half text), built offline with Nix.
 *   A. `loft --upload-path` into an empty RGW bucket, against `nix copy --to
 *      'file://DIR?compression=zstd'` followed by an 8-way parallel upload of DIR to RGW.
 *   B. Loft into a local directory (a file:// cache) against `nix copy` into one.
 *   Runs alternate, each into a fresh bucket/directory; medians are compared.
 * rss: peak RSS of `loft --upload-path` pushing one path holding a single incompressible
 *   file of 1 GiB and of 5 GiB (RGW on bluestore, so the data need not fit in RAM).
 *
 * Every side runs as its own process, start-up included. The machine may be shared: say
 * how quiet it was next to any number you quote.
 */
import { spawn } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { nixBuild, nixRequisites, runNix } from '../test/support/nix.js';
import { repoRoot, startRgw, type Rgw } from '../test/support/fixtures.js';
import { median, watchPeakRss } from './measure.js';

const MB = 1e6;
const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    paths: { type: 'string', default: '200' },
    mb: { type: 'string', default: '190' },
    runs: { type: 'string', default: '3' },
    gib: { type: 'string', default: '1,5' },
  },
});

/** Run a command; resolve with its wall time (ms) and its peak RSS (from /proc, polled). */
function timed(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ ms: number; peakRssMb: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const peak = watchPeakRss(child.pid!);
    child.on('error', reject);
    child.on('close', (code) => {
      const peakRssMb = peak.stop();
      const ms = performance.now() - t0;
      if (code === 0) resolve({ ms, peakRssMb });
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.slice(-2000)}`));
    });
  });
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

/** What a user would script: every file of a directory PUT to the bucket, 8 at a time. */
async function uploadDir(client: S3Client, bucket: string, dir: string): Promise<void> {
  const files = walk(dir);
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < files.length) {
        const f = files[next++]!;
        await client.send(
          new PutObjectCommand({ Bucket: bucket, Key: relative(dir, f), Body: readFileSync(f) }),
        );
      }
    }),
  );
}

async function createBucket(rgw: Rgw, name: string): Promise<void> {
  await runNix(join(repoRoot, 'scripts/rgw.sh'), ['bucket', rgw.dir, name]);
}

function loftToml(dir: string, rgw: Rgw, bucket: string): string {
  const file = join(dir, `${bucket}.toml`);
  writeFileSync(
    file,
    `[s3]\nbucket = "${bucket}"\nregion = "us-east-1"\nendpoint = "${rgw.env.LOFT_TEST_S3_ENDPOINT}"\n` +
      `[loft]\nlocal_cache_path = "${join(dir, `${bucket}.db`)}"\nsigning_key_path = "${join(dir, 'sk')}"\n` +
      `compression = "zstd"\nskip_signed_by_keys = []\n`,
  );
  return file;
}

async function buildClosure(paths: number, totalMb: number): Promise<string> {
  // Layers of 20; each path references two of the previous layer. Half the paths hold
  // random bytes, half text, so compression has work of both kinds.
  const per = Math.round((totalMb * MB) / paths);
  const [root] = await nixBuild(
    `
    let
      node = i: deps: mk "bench-\${toString i}" ''
        mkdir $out
        echo \${builtins.concatStringsSep " " (map toString deps)} > $out/refs
        if [ \${toString (i - (i / 2) * 2)} = 0 ]; then
          head -c ${per} /dev/urandom > $out/data
        else
          i=0; while [ $i -lt ${Math.round(per / 40)} ]; do echo "line $i of some text that repeats a lot"; i=$((i+1)); done | head -c ${per} > $out/data
        fi
      '';
      # A lazy list refers to itself, so each derivation is evaluated once.
      prev = i: builtins.elemAt all i;
      build = i: if i < 20 then node i [] else node i [ (prev (i - 20)) (prev (i - 20 + (if i - (i / 20) * 20 == 19 then -19 else 1))) ];
      all = builtins.genList build ${paths};
    in mk "bench-root" "echo \${builtins.concatStringsSep " " (map toString all)} > $out"`,
    'bench-closure-v1',
  );
  return root!;
}

/** A bluestore RGW, a work directory with a signing key (sk, pk), and Loft's environment. */
async function withBenchRgw(
  fn: (rgw: Rgw, work: string, env: NodeJS.ProcessEnv) => Promise<void>,
): Promise<void> {
  console.log('starting Ceph RGW (bluestore) ...');
  const rgw = await startRgw({ OSD_STORE: 'bluestore' });
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
    rmSync(work, { recursive: true, force: true });
  }
}

async function closureBench(): Promise<void> {
  const paths = Number(values.paths);
  const runs = Number(values.runs);
  console.log(
    `building a ${paths}-path closure of ~${values.mb} MB (cached after the first run) ...`,
  );
  const root = await buildClosure(paths, Number(values.mb));
  const closure = await nixRequisites([root]);
  const infos = JSON.parse(await runNix('nix', ['path-info', '--json', ...closure])) as {
    narSize: number;
  }[];
  const narBytes = infos.reduce((n, i) => n + i.narSize, 0);
  console.log(`closure: ${closure.length} paths, ${(narBytes / MB).toFixed(0)} MB of NAR`);

  await withBenchRgw(async (rgw, work, env) => {
    const client = new S3Client({
      endpoint: rgw.env.LOFT_TEST_S3_ENDPOINT,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: {
        accessKeyId: rgw.env.LOFT_TEST_S3_ACCESS_KEY!,
        secretAccessKey: rgw.env.LOFT_TEST_S3_SECRET_KEY!,
      },
      requestChecksumCalculation: 'WHEN_REQUIRED',
    });
    const loftS3: number[] = [];
    const nixS3: number[] = [];
    const loftDir: number[] = [];
    const nixDir: number[] = [];
    for (let r = 0; r < runs; r++) {
      // A: Loft straight to RGW ...
      const b1 = `loft-run${r}`;
      await createBucket(rgw, b1);
      const t1 = await timed(
        'node',
        [join(repoRoot, 'bin/loft.js'), '-c', loftToml(work, rgw, b1), '--upload-path', root],
        env,
      );
      loftS3.push(t1.ms);
      // ... against nix copy to a directory, then an 8-way upload of that directory.
      const dir = join(work, `nix-run${r}`);
      const b2 = `nix-run${r}`;
      await createBucket(rgw, b2);
      const t2a = await timed('nix', [
        '--extra-experimental-features',
        'nix-command',
        'copy',
        '--to',
        `file://${dir}?compression=zstd&secret-key=${join(work, 'sk')}`,
        root,
      ]);
      const t2b = performance.now();
      await uploadDir(client, b2, dir);
      nixS3.push(t2a.ms + (performance.now() - t2b));
      // B: both into a local directory.
      const d3 = join(work, `loftdir-run${r}`);
      mkdirSync(d3);
      loftDir.push(
        (
          await timed('node', [
            join(repoRoot, 'dist/bench/push-to-dir.js'),
            d3,
            join(work, 'sk'),
            root,
          ])
        ).ms,
      );
      const d4 = join(work, `nixdir-run${r}`);
      nixDir.push(
        (
          await timed('nix', [
            '--extra-experimental-features',
            'nix-command',
            'copy',
            '--to',
            `file://${d4}?compression=zstd&secret-key=${join(work, 'sk')}`,
            root,
          ])
        ).ms,
      );
      console.log(
        `run ${r + 1}: loft->rgw ${(t1.ms / 1000).toFixed(2)} s, nix copy+upload ${(nixS3[r]! / 1000).toFixed(2)} s; ` +
          `loft->dir ${(loftDir[r]! / 1000).toFixed(2)} s, nix copy->dir ${(nixDir[r]! / 1000).toFixed(2)} s`,
      );
      rmSync(dir, { recursive: true, force: true });
      rmSync(d3, { recursive: true, force: true });
      rmSync(d4, { recursive: true, force: true });
    }
    const a = median(loftS3) / median(nixS3);
    const b = median(loftDir) / median(nixDir);
    console.log(
      `\nA. to RGW: loft ${(median(loftS3) / 1000).toFixed(2)} s vs nix copy + 8-way upload ${(median(nixS3) / 1000).toFixed(2)} s: ratio ${a.toFixed(2)} (target <= 0.7)`,
    );
    console.log(
      `   loft throughput ${(narBytes / MB / (median(loftS3) / 1000)).toFixed(0)} MB/s of NAR`,
    );
    console.log(
      `B. to a directory: loft ${(median(loftDir) / 1000).toFixed(2)} s vs nix copy ${(median(nixDir) / 1000).toFixed(2)} s: ratio ${b.toFixed(2)} (target <= 1.0)`,
    );
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
        [join(repoRoot, 'bin/loft.js'), '-c', loftToml(work, rgw, bucket), '--upload-path', p!],
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

if (positionals[0] === 'closure') await closureBench();
else if (positionals[0] === 'rss') await rssBench();
else {
  console.error('usage: node dist/bench/push.js closure|rss [options]');
  process.exitCode = 2;
}
