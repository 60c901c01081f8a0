/**
 * The initial scan over a small store of the test's own (a chroot store): it queues every
 * valid path minus upstream-signed ones, resumes after a kill -9 mid-scan with each path
 * published exactly once, sets its done flag only at the end, and never runs again until
 * `--reset-initial-scan`. `--force-scan` re-checks the bucket and repairs a lost narinfo
 * the index still claims; `--clear-cache` forgets the index.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { nixBuild, nixRequisites, runNix } from '../../support/nix.js';
import { checkCacheIntegrity, makePublicCache } from '../../support/cache.js';
import {
  ServiceProcess,
  hasNarInfo,
  hashPartOf,
  runLoft,
  setupService,
  startChrootStore,
} from './support.js';

interface Status {
  initialScan: { state: string };
  index: { presentPaths: number };
  queue: { pending: number; parked: number };
}

test('the initial scan resumes after a crash, completes once, and obeys --reset-initial-scan, --force-scan and --clear-cache', async () => {
  const cache = await makePublicCache('svc-scan');
  const store = await startChrootStore();
  const keys = mkdtempSync(join(tmpdir(), 'loft-upstream-'));
  const setup = setupService(cache, store, {
    scan_on_startup: 'true',
    upload_threads: '1',
    skip_signed_by_keys: '["upstream-test-1"]',
  });
  const runs: ServiceProcess[] = [];
  const start = (args: string[] = []) => {
    const s = new ServiceProcess(setup, args);
    runs.push(s);
    return s;
  };
  const status = async (): Promise<Status> => {
    const r = await runLoft(['-c', setup.toml, '--status', '--log-format', 'json'], setup.env);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Status;
  };
  try {
    // A chain of six paths with 20 MB each (so a kill lands mid-scan), and one path signed
    // by an "upstream" key, which the scan must leave alone.
    const [last, up] = await nixBuild(`
      let
        step = prev: i: mk "scan-\${toString i}" "mkdir $out; echo \${prev} > $out/prev; head -c 20000000 /dev/urandom > $out/data";
        first = mk "scan-0" "mkdir $out; head -c 20000000 /dev/urandom > $out/data";
      in [ (builtins.foldl' step first [1 2 3 4 5]) (mk "scan-upstream" "mkdir $out; echo up > $out/f") ]`);
    const chain = await nixRequisites([last!]);
    assert.equal(chain.length, 6);
    await store.add([last!, up!]);
    await runNix('nix-store', [
      '--generate-binary-cache-key',
      'upstream-test-1',
      `${keys}/sk`,
      `${keys}/pk`,
    ]);
    await runNix('nix', ['store', 'sign', '--store', store.root, '--key-file', `${keys}/sk`, up!]);

    // Run 1: killed after two paths are published.
    let svc = start();
    const queued = await svc.waitEvent('scan-queued');
    assert.deepEqual([queued.valid, queued.upstream, queued.queued], [7, 1, 6]);
    await svc.waitFor(() => svc.events('uploaded').length >= 2, 'two paths published');
    await svc.kill9();
    const mid = svc.uploaded().length;
    assert.ok(mid < 6, `killed mid-scan (${mid} of 6 published)`);
    assert.equal((await status()).initialScan.state, 'in-progress', 'not done after a crash');

    // Run 2: resumes and completes.
    svc = start();
    assert.match((await svc.waitEvent('scan-start')).msg, /resuming/);
    await svc.waitEvent('scan-complete', () => true, 180_000);
    assert.equal(await svc.stop(), 0);
    // No path is uploaded twice. (Whether each was: the bucket says, below. A kill -9 can
    // land between a narinfo's write and its log line, so the logs may miss one.)
    const published = runs.flatMap((r) => r.uploaded());
    assert.equal(new Set(published).size, published.length, `published twice: ${published}`);
    assert.ok(published.every((p) => chain.includes(p)));
    for (const p of chain) assert.ok(await hasNarInfo(cache.client, cache.bucket, p), p);
    assert.equal(await hasNarInfo(cache.client, cache.bucket, up!), false, 'upstream path skipped');
    const report = await checkCacheIntegrity(cache.client, cache.bucket);
    assert.deepEqual(report.problems, []);
    assert.equal(report.narInfos, 6);
    let st = await status();
    assert.equal(st.initialScan.state, 'done');
    assert.equal(st.queue.pending, 0);

    // Run 3: the scan does not run again.
    svc = start();
    await svc.waitEvent('ready');
    assert.equal(await svc.stop(), 0);
    assert.equal(svc.events('scan-start').length, 0);
    assert.deepEqual(svc.uploaded(), []);

    // --reset-initial-scan: the next start scans again (and finds everything cached).
    const reset = await runLoft(['-c', setup.toml, '--reset-initial-scan'], setup.env);
    assert.equal(reset.code, 0, reset.stderr);
    assert.match(reset.stdout, /reset the initial scan/);
    assert.equal((await status()).initialScan.state, 'not-run');
    svc = start();
    const again = await svc.waitEvent('scan-queued');
    assert.deepEqual([again.cached, again.upstream, again.queued], [6, 1, 0]);
    await svc.waitEvent('scan-complete');
    assert.equal(await svc.stop(), 0);
    assert.deepEqual(svc.uploaded(), []);

    // A narinfo lost from the bucket (the index still claims it): a normal start trusts
    // the index; --force-scan asks the bucket and uploads it again.
    const lost = chain[2]!;
    await cache.client.send(
      new DeleteObjectCommand({ Bucket: cache.bucket, Key: `${hashPartOf(lost)}.narinfo` }),
    );
    svc = start();
    await svc.waitEvent('ready');
    assert.equal(await svc.stop(), 0);
    assert.deepEqual(svc.uploaded(), [], 'a normal start trusts the index');
    svc = start(['--force-scan']);
    const forced = await svc.waitEvent('scan-queued');
    assert.equal(forced.queued, 6, 'every non-upstream path is checked against the bucket');
    await svc.waitEvent('scan-complete', () => true, 120_000);
    assert.equal(await svc.stop(), 0);
    assert.deepEqual(svc.uploaded(), [lost], 'only the lost path is uploaded again');
    assert.deepEqual((await checkCacheIntegrity(cache.client, cache.bucket)).problems, []);

    // --clear-cache forgets what the index knows; the bucket keeps everything.
    const clear = await runLoft(['-c', setup.toml, '--clear-cache'], setup.env);
    assert.equal(clear.code, 0, clear.stderr);
    assert.match(clear.stdout, /forgot 6 paths/);
    st = await status();
    assert.equal(st.index.presentPaths, 0);
    assert.equal(st.initialScan.state, 'done', '--clear-cache leaves the scan flag alone');
    assert.equal((await checkCacheIntegrity(cache.client, cache.bucket)).narInfos, 6);
  } finally {
    for (const r of runs) if (r.running) await r.kill9();
    await store.stop();
    rmSync(setup.dir, { recursive: true, force: true });
    rmSync(keys, { recursive: true, force: true });
  }
});
