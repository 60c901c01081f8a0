/**
 * Ctrl-C as a terminal sends it: SIGINT to Loft's whole process group (Loft runs as a group
 * leader here, like a shell's foreground job). The first signal must finish and publish the
 * uploads in flight, for zstd and xz, over the daemon socket and over `nix-daemon --stdio`;
 * the second aborts them with one line per path and no spurious errors. The oracle is the
 * bucket (HEAD of each narinfo, the integrity walk) and real Nix substituting the published
 * paths with require-sigs on.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nixBuild } from '../../support/nix.js';
import { checkCacheIntegrity, makePublicCache, substituteFresh } from '../../support/cache.js';
import { hasNarInfo, loftBin, setupService, type ServiceSetup } from '../service/support.js';

interface Line {
  event?: string;
  path?: string;
  msg: string;
  [k: string]: unknown;
}

/** `loft --upload-path` in its own process group, with JSON lines parsed as they come. */
function startPush(setup: ServiceSetup, env: Record<string, string | undefined>, paths: string[]) {
  const child = spawn(
    process.execPath,
    [
      loftBin,
      '-c',
      setup.toml,
      '--log-format',
      'json',
      '--debug',
      ...paths.flatMap((p) => ['--upload-path', p]),
    ],
    { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const lines: Line[] = [];
  let stderr = '';
  let stdout = '';
  let buf = '';
  const waiters: (() => void)[] = [];
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
    buf += c.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const l = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        lines.push(JSON.parse(l) as Line);
      } catch {
        lines.push({ msg: l, event: 'raw' });
      }
      for (const w of waiters.splice(0)) w();
    }
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    lines,
    exited,
    get stderr() {
      return stderr;
    },
    get stdout() {
      return stdout;
    },
    /** Ctrl-C on a terminal: the signal goes to every process of the foreground group. */
    interruptGroup: () => process.kill(-child.pid!, 'SIGINT'),
    async waitFor(pred: (l: Line) => boolean, what: string): Promise<Line> {
      const deadline = Date.now() + 120_000;
      for (;;) {
        const hit = lines.find(pred);
        if (hit) return hit;
        if (child.exitCode !== null || Date.now() > deadline) {
          throw new Error(`no ${what}; stderr:\n${stderr}`);
        }
        await new Promise<void>((r) => {
          const t = setTimeout(r, 500);
          waiters.push(() => {
            clearTimeout(t);
            r();
          });
        });
      }
    },
  };
}

/** The environment that makes Loft's `auto` transport spawn `nix-daemon --stdio`. */
function stdioEnv(env: Record<string, string>): Record<string, string | undefined> {
  // No socket where Loft looks; the child still serves the real store and its state.
  return {
    ...env,
    NIX_DAEMON_SOCKET_PATH: undefined,
    NIX_STATE_DIR: mkdtempSync(join(tmpdir(), 'loft-nostate-')),
    NIX_CONFIG: 'store = local?state=/nix/var/nix',
  };
}

/**
 * Spurious noise a signal used to cause (children killed by the terminal's SIGINT), in
 * what a user sees: lines at info level and above (--debug also shows the expected drop of
 * a NAR stream's connection that an abort cuts off).
 */
const NOISE = [
  /killed by SIGINT/,
  /could not re-add temp roots/,
  /roots connection lost/,
  /connection to the nix-daemon .* lost/,
];

function assertNoNoise(lines: Line[], stderr: string): void {
  const seen = lines.filter((l) => l.level !== 'debug').map((l) => l.msg);
  for (const n of NOISE) {
    assert.ok(!seen.some((m) => n.test(m)), `${n} in:\n${stderr}`);
  }
}

/** Four independent paths of random bytes (no compression makes them quick). */
async function randomPaths(tag: string, bytes: number): Promise<string[]> {
  const mk = (i: number) => `(mk "${tag}-${i}" "head -c ${bytes} /dev/urandom > $out")`;
  return nixBuild(`[ ${[0, 1, 2, 3].map(mk).join(' ')} ]`);
}

for (const compression of ['zstd', 'xz'] as const) {
  for (const transport of ['socket', 'stdio'] as const) {
    test(`${compression} over ${transport}: the first Ctrl-C publishes the uploads in flight and exits 130`, async () => {
      const cache = await makePublicCache(`int-${compression}-${transport}`);
      const setup = setupService(cache, undefined, {
        compression: JSON.stringify(compression),
        upload_threads: '1',
      });
      // Big enough that an upload is still running when the signal lands.
      const paths = await randomPaths(
        `int-${compression}`,
        compression === 'xz' ? 3_000_000 : 48_000_000,
      );
      const env = transport === 'stdio' ? stdioEnv(setup.env) : setup.env;
      const run = startPush(setup, env, paths);
      const first = await run.waitFor((l) => l.event === 'path-started', 'path-started');
      // xz takes seconds for these bytes: let it get going, so the signal lands mid-stream.
      if (compression === 'xz') await new Promise((r) => setTimeout(r, 500));
      run.interruptGroup();
      const code = await run.exited;
      if (transport === 'stdio') assert.match(run.stderr, /nix-daemon transport: stdio/);

      // In flight at the signal: published, and in the bucket.
      assert.ok(
        run.lines.some((l) => l.event === 'uploaded' && l.path === first.path),
        `the path in flight was not published:\n${run.stderr}`,
      );
      assert.ok(await hasNarInfo(cache.client, cache.bucket, first.path!));
      // The others never started: not in the bucket, and the run says so with 130.
      const published = paths.filter((p) =>
        run.lines.some((l) => l.event === 'uploaded' && l.path === p),
      );
      assert.ok(published.length < paths.length, 'the push finished before the signal; no test');
      for (const p of paths) {
        assert.equal(await hasNarInfo(cache.client, cache.bucket, p), published.includes(p), p);
      }
      assert.equal(code, 130, run.stderr);
      const summary = JSON.parse(run.stdout) as { interrupted: boolean; complete: boolean };
      assert.equal(summary.interrupted, true);
      assert.equal(summary.complete, false);
      assertNoNoise(run.lines, run.stderr);
      assert.deepEqual((await checkCacheIntegrity(cache.client, cache.bucket)).problems, []);
      await substituteFresh(cache.url, cache.publicKey, published);
    });
  }
}

test('xz: the second Ctrl-C aborts the uploads in flight, one line each, nothing published', async () => {
  const cache = await makePublicCache('int-abort');
  const setup = setupService(cache, undefined, {
    compression: '"xz"',
    upload_threads: '2',
  });
  const paths = await randomPaths('int-abort', 6_000_000);
  const run = startPush(setup, setup.env, paths);
  await run.waitFor((l) => l.event === 'path-started', 'path-started');
  run.interruptGroup();
  await run.waitFor((l) => l.event === 'interrupt', 'the first interrupt line');
  run.interruptGroup();
  const code = await run.exited;
  assert.equal(code, 130, run.stderr);
  const aborted = run.lines.filter((l) => l.event === 'path-aborted').map((l) => l.path!);
  assert.ok(aborted.length >= 1, run.stderr);
  assert.equal(new Set(aborted).size, aborted.length, 'one line per aborted path');
  for (const p of aborted) assert.equal(await hasNarInfo(cache.client, cache.bucket, p), false);
  assertNoNoise(run.lines, run.stderr);
  assert.ok(!run.lines.some((l) => l.event === 'path-failed'), run.stderr);
  assert.match(run.stdout, /"event":"aborted"/);
  assert.deepEqual((await checkCacheIntegrity(cache.client, cache.bucket)).problems, []);
});
