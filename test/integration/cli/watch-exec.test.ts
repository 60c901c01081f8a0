/**
 * `loft --watch-exec -- COMMAND`: real nix-build, nix build and nix copy run under Loft
 * against the shared store; what they add (build-time-only dependencies included) ends up
 * in the cache, and real Nix substitutes it back with signatures required; paths the
 * watcher never saw are found from the daemon's list at the end; `nix develop -c` works; the command's exit code
 * passes through; a path excluded by a pattern stays out while its referrer is published;
 * an interrupt is passed to the command and leaves a closure-complete cache; with
 * upload_build_logs, real `nix log` reads the build's log from the bucket over HTTP.
 *
 * The shared /nix/store is watched, so paths other tests add at the same time may be
 * uploaded too: every check here is about this test's own (salted) paths.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { offline, prelude, runNix, salt } from '../../support/nix.js';
import { spawnNixDaemon, type SpawnedDaemon } from '../../support/fixtures.js';
import { checkCacheIntegrity, makePublicCache, substituteFresh } from '../../support/cache.js';
import {
  hasNarInfo,
  loftBin,
  runLoft,
  setupService,
  until,
  type ServiceSetup,
} from '../service/support.js';

// A daemon of our own on the shared store, at a socket of our own: the default socket's
// daemon belongs to whichever test run started it and may stop while this file runs.
const daemonDir = mkdtempSync(join(tmpdir(), 'loft-wx-daemon-'));
const socket = join(daemonDir, 'socket');
let daemon: SpawnedDaemon | undefined;
before(async () => {
  daemon = await spawnNixDaemon([], socket, {
    env: { ...process.env, NIX_DAEMON_SOCKET_PATH: socket },
  });
});
after(async () => {
  await daemon?.stop();
  rmSync(daemonDir, { recursive: true, force: true });
});

/** loft.toml for `cache` over the shared store through our daemon; `loft` adds keys. */
function setupFor(cache: Parameters<typeof setupService>[0], loft: Record<string, string> = {}) {
  return setupService(cache, undefined, { daemon_socket: JSON.stringify(socket), ...loft });
}

/** A nix expression file in a fresh directory; `body` may use `mk` from the prelude. */
function exprFile(body: string, s = salt()): { file: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'loft-wx-'));
  const file = join(dir, 'default.nix');
  writeFileSync(file, `${prelude(s)}\n${body}\n`);
  return { file, dir };
}

const nixBuildArgs = (file: string) => ['nix-build', file, '--no-out-link', ...offline];

function watchExec(setup: ServiceSetup, command: string[]) {
  return runLoft(['-c', setup.toml, '--watch-exec', '--', ...command], setup.env);
}

/** The store path nix-build printed last (its stdout is inherited through Loft's). */
function builtPath(stdout: string): string {
  const line = stdout.split('\n').filter((l) => l.startsWith('/nix/store/'));
  assert.ok(line.length > 0, `nix-build printed a path: ${stdout}`);
  return line[line.length - 1]!;
}

test('watch-exec uploads what nix-build built, build-time-only dependencies included, and Nix substitutes it', async () => {
  const cache = await makePublicCache('wx-all');
  const setup = setupFor(cache);
  // `tool` is used while `top` builds but not referenced by it: a build-time-only dependency.
  const { file, dir } = exprFile(`
let
  tool = mk "wx-tool" "mkdir $out; echo tool-output > $out/data";
  lib = mk "wx-lib" "mkdir $out; echo lib > $out/f";
in mk "wx-top" "mkdir $out; cat \${tool}/data > $out/copied; echo \${lib} > $out/ref"`);
  try {
    const r = await watchExec(setup, nixBuildArgs(file));
    assert.equal(r.code, 0, r.stderr);
    const top = builtPath(r.stdout);
    assert.match(
      r.stdout,
      /watch-exec: \d+ new store paths \(\d+ seen while the command ran\); uploaded \d+ paths/,
    );
    const refs = (await runNix('nix-store', ['-q', '--references', top])).trim().split('\n');
    const lib = refs.find((p) => p.endsWith('-wx-lib'))!;
    assert.ok(lib, `top references lib: ${refs.join(' ')}`);
    assert.ok(!refs.some((p) => p.endsWith('-wx-tool')), 'tool is not a runtime reference');
    const drv = (await runNix('nix-store', ['-q', '--deriver', top])).trim();
    const tool = (await runNix('nix-store', ['-q', '--references', drv]))
      .split('\n')
      .find((p) => p.endsWith('-wx-tool.drv'))!;
    const toolOut = (await runNix('nix-store', ['-q', '--outputs', tool])).trim();
    for (const p of [top, lib, toolOut]) {
      assert.ok(await hasNarInfo(cache.client, cache.bucket, p), `${p} is in the cache`);
    }
    assert.deepEqual((await checkCacheIntegrity(cache.client, cache.bucket)).problems, []);
    const root = await substituteFresh(cache.url, cache.publicKey, [top, toolOut]);
    rmSync(root, { recursive: true, force: true });
  } finally {
    rmSync(setup.dir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
});

test("paths the watcher never saw are found from the daemon's list when the command ends", async () => {
  const cache = await makePublicCache('wx-missed');
  // The watcher watches an empty directory, so it sees nothing of the build; NARs are read
  // through the daemon (the files are not under that directory either).
  const blind = mkdtempSync(join(tmpdir(), 'loft-wx-blind-'));
  const setup = setupFor(cache, { real_store_dir: JSON.stringify(blind) });
  const { file, dir } = exprFile(`
let dep = mk "wx-missed-dep" "mkdir $out; echo d > $out/f";
in mk "wx-missed-top" "mkdir $out; echo \${dep} > $out/ref"`);
  try {
    const r = await watchExec(setup, nixBuildArgs(file));
    assert.equal(r.code, 0, r.stderr);
    const top = builtPath(r.stdout);
    assert.match(r.stdout, /\(0 seen while the command ran\)/);
    assert.ok(await hasNarInfo(cache.client, cache.bucket, top));
    assert.deepEqual((await checkCacheIntegrity(cache.client, cache.bucket)).problems, []);
  } finally {
    rmSync(setup.dir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
    rmSync(blind, { recursive: true, force: true });
  }
});

test('watch-exec works with nix build and with nix copy from another cache', async () => {
  const cache = await makePublicCache('wx-nix');
  const setup = setupFor(cache);
  const { file, dir } = exprFile(`{
  built = mk "wx-nix-build" "mkdir $out; echo b > $out/f";
  copied = mk "wx-nix-copy" "mkdir $out; echo c > $out/f";
}`);
  const nix = ['nix', '--extra-experimental-features', 'nix-command'];
  try {
    const built = await watchExec(setup, [
      ...nix,
      'build',
      '-f',
      file,
      'built',
      '--no-link',
      '--json',
      ...offline,
    ]);
    assert.equal(built.code, 0, built.stderr);
    const json = built.stdout.split('\n').find((l) => l.startsWith('['))!;
    const b = (JSON.parse(json) as { outputs: { out: string } }[])[0]!.outputs.out;
    assert.ok(await hasNarInfo(cache.client, cache.bucket, b), 'nix build output uploaded');

    // A path that comes into the store by `nix copy` from a file:// cache.
    const [c] = (await runNix('nix-build', [file, '-A', 'copied', '--no-out-link', ...offline]))
      .trim()
      .split('\n');
    const other = join(dir, 'other-cache');
    await runNix('nix', ['copy', '--to', `file://${other}`, c!]);
    await runNix('nix-store', ['--delete', c!]);
    const copied = await watchExec(setup, [
      ...nix,
      'copy',
      '--from',
      `file://${other}`,
      '--no-check-sigs',
      c!,
    ]);
    assert.equal(copied.code, 0, copied.stderr);
    // Not an exact count: other tests may add paths to the shared store meanwhile.
    assert.match(copied.stdout, /watch-exec: [1-9]\d* new store paths/);
    assert.ok(await hasNarInfo(cache.client, cache.bucket, c!), 'nix copy output uploaded');
  } finally {
    rmSync(setup.dir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
});

test('watch-exec works with nix develop -c: the shell environment and what the command builds in it are uploaded', async () => {
  const cache = await makePublicCache('wx-develop');
  const setup = setupFor(cache);
  const s = salt();
  // `nix develop` needs a bash builder, and `outputs` in the environment (its get-env.sh
  // writes the environment to each output named there; stdenv sets it, `derivation` not).
  const { file, dir } = exprFile(
    `{
  shell = derivation {
    name = "wx-dev-shell";
    system = builtins.currentSystem;
    builder = "/bin/bash";
    args = [ "-c" "echo unused > $out" ];
    outputs = [ "out" ];
    PATH = "/usr/bin:/bin";
    salt = "${s}";
  };
  built = mk "wx-dev-built" "mkdir $out; echo d > $out/f";
}`,
    s,
  );
  const profile = join(dir, 'dev-profile');
  const nix = ['nix', '--extra-experimental-features', 'nix-command'];
  try {
    const r = await watchExec(setup, [
      ...nix,
      'develop',
      '-f',
      file,
      'shell',
      '--profile',
      profile,
      ...offline,
      '-c',
      ...nixBuildArgs(file),
      '-A',
      'built',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const built = builtPath(r.stdout);
    assert.match(built, /-wx-dev-built$/);
    assert.ok(await hasNarInfo(cache.client, cache.bucket, built), 'built in the shell: uploaded');
    // The shell's environment, a store path nix develop builds (and links the profile to).
    const env = realpathSync(profile);
    assert.match(env, /^\/nix\/store\/[0-9a-z]{32}-wx-dev-shell-env$/);
    assert.ok(await hasNarInfo(cache.client, cache.bucket, env), `${env} uploaded`);
    // No whole-bucket integrity check: other work on the shared store can add thousands
    // of paths while this runs, and they are uploaded too (the other tests check it).
  } finally {
    rmSync(setup.dir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
});

test("watch-exec exits with the command's failing exit code, after uploading what it built", async () => {
  const cache = await makePublicCache('wx-fail');
  const setup = setupFor(cache);
  const { file, dir } = exprFile(`
let ok = mk "wx-built-before-failure" "mkdir $out; echo ok > $out/f";
in mk "wx-broken" "echo \${ok}; exit 3"`);
  try {
    const r = await watchExec(setup, nixBuildArgs(file));
    // nix-build exits 100 when a build fails.
    assert.equal(r.code, 100, r.stderr);
    // The dependency built before the failure is in the cache.
    const broken = (await runNix('nix-instantiate', [file])).trim();
    const okDrv = (await runNix('nix-store', ['-q', '--references', broken]))
      .split('\n')
      .find((p) => p.endsWith('-wx-built-before-failure.drv'))!;
    const ok = (await runNix('nix-store', ['-q', '--outputs', okDrv])).trim();
    assert.ok(await hasNarInfo(cache.client, cache.bucket, ok), `${ok} is in the cache`);
    assert.match(r.stdout, /uploaded [1-9]\d* paths/);
    const plain = await watchExec(setup, ['sh', '-c', 'exit 7']);
    assert.equal(plain.code, 7);
    assert.match(plain.stdout, /watch-exec: \d+ new store paths/);
    const missing = await watchExec(setup, ['/nonexistent/command']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot run "\/nonexistent\/command": command not found/);
  } finally {
    rmSync(setup.dir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a path excluded by a pattern is absent while its referrer is published, and --dry-run counts it', async () => {
  const cache = await makePublicCache('wx-exclude');
  const setup = setupFor(cache, { exclude_patterns: '["^wx-private-"]' });
  const { file, dir } = exprFile(`
let priv = mk "wx-private-data" "mkdir $out; echo secret > $out/f";
in mk "wx-public-app" "mkdir $out; echo \${priv} > $out/ref"`);
  try {
    const r = await watchExec(setup, nixBuildArgs(file));
    assert.equal(r.code, 0, r.stderr);
    const top = builtPath(r.stdout);
    const priv = (await runNix('nix-store', ['-q', '--references', top]))
      .split('\n')
      .find((p) => p.endsWith('-wx-private-data'))!;
    assert.ok(priv);
    assert.ok(await hasNarInfo(cache.client, cache.bucket, top), 'the referrer is published');
    assert.equal(await hasNarInfo(cache.client, cache.bucket, priv), false, 'excluded path absent');
    assert.match(r.stdout, /[1-9]\d* excluded by patterns/);
    const integrity = await checkCacheIntegrity(cache.client, cache.bucket, (ref) =>
      ref.includes('-wx-private-'),
    );
    assert.deepEqual(integrity.problems, []);
    // --dry-run counts it too.
    const dry = await runLoft(['-c', setup.toml, '--upload-path', top, '--dry-run'], setup.env);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /1 excluded by patterns; nothing was written/);
  } finally {
    rmSync(setup.dir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an interrupt during the command is passed to it and leaves the cache closure-complete', async () => {
  const cache = await makePublicCache('wx-int');
  const setup = setupFor(cache);
  const { file, dir } = exprFile(`
let dep = mk "wx-int-dep" "mkdir $out; echo d > $out/f";
in mk "wx-int-top" "mkdir $out; echo \${dep} > $out/ref"`);
  const marker = join(dir, 'built');
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [
      loftBin,
      '-c',
      setup.toml,
      '--debug',
      '--watch-exec',
      '--',
      'sh',
      '-c',
      `nix-build ${file} --no-out-link --option substituters '' > ${marker} && exec sleep 60`,
    ],
    { env: setup.env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    // Once the build is done and its top path is uploaded, interrupt.
    let top = '';
    await until(async () => {
      const { readFileSync } = await import('node:fs');
      try {
        top = readFileSync(marker, 'utf8').trim();
      } catch {
        return false;
      }
      return top !== '' && (await hasNarInfo(cache.client, cache.bucket, top));
    }, 'the build to be uploaded while the command still runs').catch((e: Error) => {
      throw new Error(`${e.message}; loft's stderr:\n${stderr}`);
    });
    child.kill('SIGINT');
    const code = await exited;
    // sleep was killed by the forwarded SIGINT: 128 + 2.
    assert.equal(code, 130, stderr);
    assert.ok(performance.now() - t0 < 55_000, 'the command did not run to its end');
    assert.deepEqual((await checkCacheIntegrity(cache.client, cache.bucket)).problems, []);
    assert.match(stdout, /watch-exec: /);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(setup.dir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
});

test('upload_build_logs: real nix log reads the build log from the bucket over HTTP', async () => {
  const cache = await makePublicCache('wx-logs');
  const setup = setupFor(cache, { upload_build_logs: 'true' });
  const s = salt();
  const { file, dir } = exprFile(
    `mk "wx-logged" "echo this-line-is-in-the-build-log-${s}; mkdir $out; echo x > $out/f"`,
    s,
  );
  try {
    const r = await watchExec(setup, nixBuildArgs(file));
    assert.equal(r.code, 0, r.stderr);
    const top = builtPath(r.stdout);
    const drv = (await runNix('nix-store', ['-q', '--deriver', top])).trim();
    const key = `log/${drv.slice('/nix/store/'.length)}`;
    const obj = await cache.client.send(new GetObjectCommand({ Bucket: cache.bucket, Key: key }));
    assert.equal(obj.ContentEncoding, 'bzip2');
    const log = await runNix('nix', [
      'log',
      '--store',
      cache.url,
      top,
      '--option',
      'narinfo-cache-negative-ttl',
      '0',
    ]);
    assert.match(log, new RegExp(`this-line-is-in-the-build-log-${s}`));
  } finally {
    rmSync(setup.dir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
});
