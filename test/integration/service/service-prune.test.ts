/**
 * Scheduled pruning inside the service: with `prune_enabled`, the real prune runs on
 * `prune_schedule` (again and again, at its interval), its time and summary are kept in the
 * local index for `--status`, and a fresh closure (well within the retention) is left
 * whole. What a prune deletes is proven in test/integration/prune (it needs objects older
 * than the server's clock allows here).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { nixBuild } from '../../support/nix.js';
import { checkCacheIntegrity, makePublicCache } from '../../support/cache.js';
import { ServiceProcess, runLoft, setupService, startChrootStore } from './support.js';

test('the service prunes every 2 s on its schedule, keeps a fresh closure whole, and --status shows it', async () => {
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
    // On its schedule: it runs again, no sooner than the 2 s interval after the first.
    await svc.waitFor(() => svc!.events('prune-done').length >= 2, 'a second prune', 60_000);
    const starts = svc.events('prune-start').map((l) => Date.parse(l.time));
    assert.ok(starts.length >= 2, JSON.stringify(starts));
    assert.ok(starts[1]! - starts[0]! >= 1900, `runs ${starts[1]! - starts[0]!} ms apart`);
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
