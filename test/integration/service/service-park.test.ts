/**
 * A path that keeps failing (its bytes no longer match what the store registered) is
 * retried with backoff, then parked with its reason, shown by `--status` (text and JSON),
 * while other paths keep uploading; discovered again (here through the post-build hook)
 * once it is repaired, it gets a fresh round of attempts and is uploaded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nixBuild } from '../../support/nix.js';
import { checkCacheIntegrity, makePublicCache } from '../../support/cache.js';
import { ServiceProcess, hasNarInfo, runLoft, setupService, startChrootStore } from './support.js';

interface StatusJson {
  queue: {
    pending: number;
    parked: number;
    parkedPaths: { path: string; attempts: number; lastError?: string; parkedAt?: string }[];
  };
}

test('a path that keeps failing is parked with its reason, shown by --status, and never blocks the others', async () => {
  const cache = await makePublicCache('svc-park');
  const store = await startChrootStore();
  const setup = setupService(cache, store, {
    queue_max_attempts: '2',
    queue_retry_seconds: '1',
  });
  let svc: ServiceProcess | undefined;
  try {
    // Baseline on the empty store, so what is added next is new.
    svc = new ServiceProcess(setup);
    await svc.waitEvent('ready');
    assert.equal(await svc.stop(), 0);

    const [good, bad, later] = await nixBuild(`[
      (mk "park-good" "mkdir $out; echo good > $out/f")
      (mk "park-bad" "mkdir $out; echo original > $out/f")
      (mk "park-later" "mkdir $out; echo later > $out/f")
    ]`);
    await store.add([good!, bad!]);
    // Change the bad path's bytes behind the store's back (only this test's chroot copy).
    const dirOnDisk = join(store.realStoreDir, bad!.slice('/nix/store/'.length));
    const file = join(dirOnDisk, 'f');
    const original = readFileSync(file);
    const tamper = (content: Buffer | string) => {
      chmodSync(dirOnDisk, 0o755);
      chmodSync(file, 0o644);
      writeFileSync(file, content);
      chmodSync(file, 0o444);
      chmodSync(dirOnDisk, 0o555);
    };
    tamper('tampered\n');

    svc = new ServiceProcess(setup);
    await svc.waitEvent('uploaded', (l) => l.path === good);
    const failed = await svc.waitEvent('path-failed', (l) => l.path === bad);
    assert.equal(failed.attempts, 1);
    const parked = await svc.waitEvent('parked', (l) => l.path === bad, 30_000);
    assert.equal(parked.attempts, 2);
    assert.match(String(parked.reason), /corrupt/);
    assert.equal(await hasNarInfo(cache.client, cache.bucket, bad!), false);

    // Parked, it blocks nothing: a new path still goes up.
    await store.add([later!]);
    await svc.waitEvent('uploaded', (l) => l.path === later);

    const text = await runLoft(['-c', setup.toml, '--status'], setup.env);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /queue: +0 pending \(0 in progress, 0 retrying\), 1 parked/);
    assert.ok(text.stdout.includes(`${bad} (failed 2x, parked `), text.stdout);
    assert.match(text.stdout, /corrupt/);
    const json = await runLoft(['-c', setup.toml, '--status', '--log-format', 'json'], setup.env);
    const report = JSON.parse(json.stdout) as StatusJson;
    assert.equal(report.queue.parked, 1);
    assert.equal(report.queue.parkedPaths[0]!.path, bad);
    assert.equal(report.queue.parkedPaths[0]!.attempts, 2);
    assert.match(report.queue.parkedPaths[0]!.lastError!, /corrupt/);

    // Repaired and discovered again (the hook): a fresh round of attempts, and it goes up.
    tamper(original);
    const hook = await runLoft(['-c', setup.toml, '--post-build-hook'], {
      ...setup.env,
      OUT_PATHS: bad!,
    });
    assert.equal(hook.code, 0, hook.stderr);
    const requeued = await svc.waitEvent('queued', (l) => l.source === 'hook');
    assert.equal(requeued.unparked, 1);
    await svc.waitEvent('uploaded', (l) => l.path === bad);
    assert.equal(await svc.stop(), 0);
    const after = JSON.parse(
      (await runLoft(['-c', setup.toml, '--status', '--log-format', 'json'], setup.env)).stdout,
    ) as StatusJson;
    assert.deepEqual([after.queue.pending, after.queue.parked], [0, 0]);
    assert.deepEqual((await checkCacheIntegrity(cache.client, cache.bucket)).problems, []);
  } finally {
    if (svc?.running) await svc.kill9();
    await store.stop();
    rmSync(setup.dir, { recursive: true, force: true });
  }
});
