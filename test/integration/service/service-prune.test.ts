/**
 * Scheduled pruning inside the service: with `prune_enabled`, the real prune runs on
 * `prune_schedule`, its time and summary are kept in the local index for `--status`, and
 * a fresh closure (well within the retention) is left whole.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { nixBuild } from '../../support/nix.js';
import { checkCacheIntegrity, makePublicCache } from '../../support/cache.js';
import { ServiceProcess, runLoft, setupService, startChrootStore } from './support.js';

test('the service prunes on its schedule and --status shows the last prune', async () => {
  const cache = await makePublicCache('svc-prune');
  const store = await startChrootStore();
  const setup = setupService(cache, store, {
    prune_enabled: 'true',
    prune_schedule: '"2s"',
    prune_retention_days: '1',
  });
  let svc: ServiceProcess | undefined;
  try {
    svc = new ServiceProcess(setup);
    await svc.waitEvent('ready');
    const [top] = await nixBuild(`
      let a = mk "prune-svc-a" "mkdir $out; echo a > $out/f";
      in mk "prune-svc-top" "mkdir $out; echo \${a} > $out/f"`);
    await store.add([top!]);
    await svc.waitEvent('uploaded', (l) => l.path === top);
    const scheduled = await svc.waitEvent('prune-scheduled');
    assert.ok(typeof scheduled.next === 'string');
    const done = await svc.waitEvent('prune-done', () => true, 60_000);
    assert.match(done.msg, /deleted 0 narinfos/);
    assert.equal(await svc.stop(), 0);

    const status = await runLoft(['-c', setup.toml, '--status', '--log-format', 'json'], setup.env);
    const prune = (
      JSON.parse(status.stdout) as {
        prune: { enabled: boolean; lastRun?: string; lastSummary?: string; nextRun?: string };
      }
    ).prune;
    assert.equal(prune.enabled, true);
    assert.ok(prune.lastRun && prune.nextRun, JSON.stringify(prune));
    assert.match(prune.lastSummary!, /deleted 0 narinfos/);
    const report = await checkCacheIntegrity(cache.client, cache.bucket);
    assert.deepEqual(report.problems, []);
    assert.equal(report.narInfos, 2, 'the fresh closure is kept whole');
  } finally {
    if (svc?.running) await svc.kill9();
    await store.stop();
    rmSync(setup.dir, { recursive: true, force: true });
  }
});
