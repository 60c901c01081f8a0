/**
 * The one-shot actions through the real `loft` binary, config file and exit codes:
 * `--upload-path` (with `--dry-run` and `-` for stdin), `--prune` (with `--dry-run`) and
 * `--status` showing the manual prune.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nixBuild, nixRequisites } from '../../support/nix.js';
import { checkCacheIntegrity, makePublicCache, substituteFresh } from '../../support/cache.js';
import { listKeysRaw } from '../../support/s3.js';
import { runLoft, setupService } from '../service/support.js';

test('--upload-path: dry run writes nothing; the push exits 0 and Nix substitutes it', async () => {
  const cache = await makePublicCache('cli-upload');
  const setup = setupService(cache, undefined);
  const [top] = await nixBuild(`
    let dep = mk "cli-dep" "mkdir $out; echo dep > $out/f";
    in mk "cli-top" "echo \${dep} > $out"`);
  const c = ['-c', setup.toml];

  const dry = await runLoft([...c, '--upload-path', top!, '--dry-run'], setup.env);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /dry run: would upload 2 paths .*nothing was written/);
  assert.deepEqual(await listKeysRaw(cache.client, cache.bucket), [], 'not even nix-cache-info');

  const run = await runLoft([...c, '--upload-path', top!], setup.env);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^uploaded 2 paths: .* 0 failed, in /m);
  assert.deepEqual((await checkCacheIntegrity(cache.client, cache.bucket)).problems, []);
  await substituteFresh(cache.url, cache.publicKey, [top!]);

  // Paths on stdin, with the index answering: nothing to do, still exit 0.
  const again = await runLoft([...c, '--upload-path', '-'], setup.env, `${top}\n`);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /uploaded 0 paths: .* 2 already cached/);
});

test('--upload-path: paths that are not in the store are a usage error naming each', async () => {
  const cache = await makePublicCache('cli-badpath');
  const setup = setupService(cache, undefined);
  const r = await runLoft(
    [
      '-c',
      setup.toml,
      '--upload-path',
      '/tmp/definitely-not-a-store-path',
      '--upload-path',
      '/nix/store/nothing',
      '--upload-path',
      '/usr/bin/env',
      '--upload-path',
      '/usr/bin',
    ],
    setup.env,
  );
  assert.equal(r.code, 2);
  // One line per path, and each kind of advice once, on a line of its own.
  assert.match(r.stderr, /\n {2}\/tmp\/definitely-not-a-store-path does not exist\n/);
  assert.match(r.stderr, /\n {2}invalid store path "\/nix\/store\/nothing": [^\n]*\n/);
  assert.match(r.stderr, /\n {2}\/usr\/bin\/env is not in the Nix store \(\/nix\/store\)\n/);
  assert.match(r.stderr, /\n {2}\/usr\/bin is not in the Nix store \(\/nix\/store\)\n/);
  assert.equal(r.stderr.match(/hint: give a store path \(\/nix\/store/g)?.length, 1, r.stderr);
  assert.ok(!/\) hint:/.test(r.stderr), `a hint ran into a problem line: ${r.stderr}`);
  assert.deepEqual(await listKeysRaw(cache.client, cache.bucket), []);
});

test('--prune: a dry run deletes nothing; a prune keeps live closures and shows in --status', async () => {
  const cache = await makePublicCache('cli-prune');
  const setup = setupService(cache, undefined);
  const [top] = await nixBuild(`mk "cli-prune" "mkdir $out; echo x > $out/f"`);
  const c = ['-c', setup.toml];
  assert.equal((await runLoft([...c, '--upload-path', top!], setup.env)).code, 0);
  const before = (await listKeysRaw(cache.client, cache.bucket)).sort();

  const dry = await runLoft([...c, '--prune', '--dry-run'], setup.env);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /dry run: nothing was deleted/);

  const run = await runLoft([...c, '--prune'], setup.env);
  assert.equal(run.code, 0, run.stderr);
  // Everything is younger than the retention: the cache is untouched.
  assert.deepEqual((await listKeysRaw(cache.client, cache.bucket)).sort(), before);
  await substituteFresh(cache.url, cache.publicKey, await nixRequisites([top!]));

  const status = await runLoft([...c, '--status', '--log-format', 'json'], setup.env);
  assert.equal(status.code, 0, status.stderr);
  const s = JSON.parse(status.stdout) as { prune?: { lastRun?: string; lastSummary?: string } };
  assert.ok(s.prune?.lastRun, status.stdout);
  assert.match(s.prune?.lastSummary ?? '', /^deleted 0 narinfos and 0 NARs/);
});

test('a daemon_socket that does not exist is an error naming it, never a fallback', async () => {
  const cache = await makePublicCache('cli-socket');
  const setup = setupService(cache, undefined, {
    daemon_socket: JSON.stringify('/run/no-such-dir/daemon-socket'),
  });
  const [p] = await nixBuild(`mk "cli-socket" "echo x > $out"`);
  const r = await runLoft(['-c', setup.toml, '--upload-path', p!], setup.env);
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, /\/run\/no-such-dir\/daemon-socket/);
  assert.deepEqual(await listKeysRaw(cache.client, cache.bucket), []);
});

test('--prune and --populate-cache work against the bucket alone (no nix-daemon needed)', async () => {
  const cache = await makePublicCache('cli-nodaemon');
  const setup = setupService(cache, undefined, {
    daemon_socket: JSON.stringify('/run/no-such-dir/daemon-socket'),
  });
  for (const flag of ['--prune', '--populate-cache']) {
    const r = await runLoft(['-c', setup.toml, flag], setup.env);
    assert.equal(r.code, 0, `${flag}: ${r.stderr}`);
  }
});
