/**
 * exclude_patterns in the service: a path the store watcher finds that matches a pattern is
 * not uploaded, its referrer is, and the queue is left empty (an excluded path is done,
 * not retried).
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
