/**
 * exclude_patterns in the service: a path the store watcher or the initial scan finds that
 * matches a pattern never enters the queue and is not uploaded, its referrer is, the batch
 * log line counts it as excluded, and the queue is left empty.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { nixBuild, nixRequisites } from '../../support/nix.js';
import { checkCacheIntegrity, makePublicCache } from '../../support/cache.js';
import { ServiceProcess, hasNarInfo, runLoft, setupService, startChrootStore } from './support.js';

test('the service leaves an excluded path out and publishes its referrer', async () => {
  const cache = await makePublicCache('svc-filter');
  const store = await startChrootStore();
  const setup = setupService(cache, store, { exclude_patterns: '["^svc-filter-private$"]' });
  let svc: ServiceProcess | undefined;
  try {
    const [top] = await nixBuild(`
      let priv = mk "svc-filter-private" "mkdir $out; echo p > $out/f";
      in mk "svc-filter-app" "mkdir $out; echo \${priv} > $out/f"`);
    const priv = (await nixRequisites([top!])).find((p) => p.endsWith('-svc-filter-private'))!;
    assert.ok(priv);
    svc = new ServiceProcess(setup);
    await svc.waitEvent('ready');
    await store.add([top!]);
    await svc.waitEvent('uploaded', (l) => l.path === top);
    assert.equal(await hasNarInfo(cache.client, cache.bucket, priv), false);
    assertNeverQueued(svc, priv);
    const batch = await svc.waitEvent('batch', (l) => l.uploaded === 1);
    assert.equal(batch.excluded, 1, JSON.stringify(batch));
    assert.match(batch.msg, /1 excluded by patterns/);
    const integrity = await checkCacheIntegrity(cache.client, cache.bucket, (ref) =>
      ref.endsWith('-svc-filter-private'),
    );
    assert.deepEqual(integrity.problems, []);
    assert.equal(await svc.stop(), 0);
    assert.ok(!svc.uploaded().includes(priv), 'never uploaded');
    const status = await runLoft(['-c', setup.toml, '--status'], setup.env);
    assert.match(status.stdout, /queue:\s+0 pending/, status.stdout);
  } finally {
    if (svc?.running) await svc.kill9();
    await store.stop();
    rmSync(setup.dir, { recursive: true, force: true });
  }
});

/** No `queued` line of the service lists the path. */
function assertNeverQueued(svc: ServiceProcess, path: string): void {
  for (const q of svc.events('queued')) {
    assert.ok(!String(q.paths).includes(path), `queued: ${JSON.stringify(q)}`);
  }
}

test('the initial scan counts an excluded path and never queues it; its referrer is uploaded', async () => {
  const cache = await makePublicCache('svc-filter-scan');
  const store = await startChrootStore();
  const setup = setupService(cache, store, {
    exclude_patterns: '["^svc-scan-private$"]',
    scan_on_startup: 'true',
  });
  let svc: ServiceProcess | undefined;
  try {
    const [top] = await nixBuild(`
      let priv = mk "svc-scan-private" "mkdir $out; echo p > $out/f";
      in mk "svc-scan-app" "mkdir $out; echo \${priv} > $out/f"`);
    const priv = (await nixRequisites([top!])).find((p) => p.endsWith('-svc-scan-private'))!;
    assert.ok(priv);
    await store.add([top!]);
    svc = new ServiceProcess(setup);
    const scanned = await svc.waitEvent('scan-queued');
    assert.deepEqual([scanned.valid, scanned.excluded, scanned.queued], [2, 1, 1]);
    await svc.waitEvent('scan-complete');
    assertNeverQueued(svc, priv);
    const batch = svc.events('batch').find((l) => l.uploaded === 1)!;
    assert.ok(batch, 'a batch uploaded the referrer');
    assert.equal(batch.excluded, 1, JSON.stringify(batch));
    assert.equal(await hasNarInfo(cache.client, cache.bucket, top!), true);
    assert.equal(await hasNarInfo(cache.client, cache.bucket, priv), false);
    assert.equal(await svc.stop(), 0);
  } finally {
    if (svc?.running) await svc.kill9();
    await store.stop();
    rmSync(setup.dir, { recursive: true, force: true });
  }
});
