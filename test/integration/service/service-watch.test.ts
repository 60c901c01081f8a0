/**
 * The service watching a store: a closure that becomes valid while it runs is uploaded
 * within seconds and real Nix substitutes it with signatures required; paths present at
 * the first start (no initial scan) are not uploaded; paths added while the service was
 * down are found by reconciliation at the next start.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { rmSync } from 'node:fs';
import { nixBuild, nixRequisites } from '../../support/nix.js';
import { checkCacheIntegrity, makePublicCache, substituteFresh } from '../../support/cache.js';
import { ServiceProcess, hasNarInfo, setupService, startChrootStore, until } from './support.js';

test('the running service uploads a new closure within seconds; real Nix substitutes it', async () => {
  const cache = await makePublicCache('svc-watch');
  const store = await startChrootStore();
  const setup = setupService(cache, store);
  let svc: ServiceProcess | undefined;
  try {
    const [old] = await nixBuild(`mk "svc-old" "mkdir $out; echo old > $out/f"`);
    await store.add([old!]);
    const [top] = await nixBuild(`
      let
        a = mk "svc-dep-a" "mkdir $out; echo a > $out/f";
        b = mk "svc-dep-b" "mkdir $out; echo \${a} > $out/f";
      in mk "svc-top" "mkdir $out; echo \${a} \${b} > $out/f"`);
    const closure = await nixRequisites([top!]);
    assert.equal(closure.length, 3);

    svc = new ServiceProcess(setup);
    const ready = await svc.waitEvent('ready');
    assert.equal(ready.storeDir, store.realStoreDir);
    assert.ok(svc.events('baseline').length === 1, 'first start takes a baseline');
    assert.ok(svc.events('cache-info-written').length === 1, 'nix-cache-info written at start');

    await store.add([top!]); // the closure becomes valid in the watched store
    const t0 = performance.now();
    await until(
      () => hasNarInfo(cache.client, cache.bucket, top!),
      'the narinfo of the top path',
      30_000,
      50,
    );
    const latency = performance.now() - t0;
    console.log(
      `watch latency (copy done -> narinfo visible): ${latency.toFixed(0)} ms (noisy shared machine)`,
    );
    assert.ok(latency < 10_000, `uploaded within seconds (took ${latency} ms)`);
    const queued = svc.events('queued').find((l) => l.source === 'watch');
    assert.ok(queued, 'found by the store watcher');

    rmSync(await substituteFresh(cache.url, cache.publicKey, [top!]), {
      recursive: true,
      force: true,
    });
    const report = await checkCacheIntegrity(cache.client, cache.bucket);
    assert.deepEqual(report.problems, []);
    assert.equal(report.narInfos, 3);
    assert.equal(
      await hasNarInfo(cache.client, cache.bucket, old!),
      false,
      'baseline path not uploaded',
    );

    assert.equal(await svc.stop(), 0, 'a clean stop after SIGTERM exits 0');
    assert.ok(svc.events('stopped').length === 1);

    // Added while Loft is down: no watcher event, found by reconciliation at start.
    const [later] = await nixBuild(`mk "svc-while-down" "mkdir $out; echo later > $out/f"`);
    await store.add([later!]);
    svc = new ServiceProcess(setup);
    await svc.waitEvent('uploaded', (l) => l.path === later);
    assert.ok(
      svc
        .events('queued')
        .some((l) => l.source === 'reconcile' && String(l.paths).includes(later!)),
      'queued by reconciliation',
    );
    assert.equal(svc.events('baseline').length, 0, 'no second baseline');
    assert.equal(await hasNarInfo(cache.client, cache.bucket, old!), false);
    assert.equal(await svc.stop(), 0);
    assert.deepEqual((await checkCacheIntegrity(cache.client, cache.bucket)).problems, []);
  } finally {
    if (svc?.running) await svc.kill9();
    await store.stop();
    rmSync(setup.dir, { recursive: true, force: true });
  }
});
