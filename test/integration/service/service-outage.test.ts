/**
 * An S3 outage (every request answered 503 through a fault proxy in front of RGW) pauses
 * uploads with a growing wait, never charges the queued path an attempt (so it is never
 * parked for the outage, however long), and the path goes up once S3 answers again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { nixBuild } from '../../support/nix.js';
import { checkCacheIntegrity, makePublicCache } from '../../support/cache.js';
import { s3TestEnv, startFaultProxy, type FaultRule } from '../../support/s3.js';
import { ServiceProcess, hasNarInfo, runLoft, setupService, startChrootStore } from './support.js';

test('an S3 outage pauses uploads with a growing wait, parking nothing; they resume when S3 is back', async () => {
  const cache = await makePublicCache('svc-outage');
  const store = await startChrootStore();
  const proxy = await startFaultProxy(s3TestEnv().endpoint);
  const setup = setupService(
    cache,
    store,
    { queue_max_attempts: '2', queue_retry_seconds: '1' },
    { endpoint: JSON.stringify(proxy.url), max_attempts: '1' },
  );
  let svc: ServiceProcess | undefined;
  try {
    svc = new ServiceProcess(setup);
    await svc.waitEvent('ready');
    const outage: FaultRule = {
      name: 'outage',
      match: () => true,
      action: { kind: 'status', status: 503, code: 'ServiceUnavailable' },
      times: Number.MAX_SAFE_INTEGER,
    };
    proxy.rules.push(outage);

    const [p] = await nixBuild(`mk "outage-path" "mkdir $out; echo o > $out/f"`);
    await store.add([p!]);
    await svc.waitEvent('queued', (l) => l.source === 'watch');
    await svc.waitEvent('outage');
    // Two pauses: more than queue_max_attempts would allow if outages counted.
    await svc.waitFor(() => svc!.events('outage').length >= 2, 'a second pause', 60_000);
    // The wait grows: 5 s, then 10 s (the failure policy's outage backoff, no jitter).
    const waits = svc.events('outage').map((l) => l.retryInMs);
    assert.deepEqual(waits.slice(0, 2), [5000, 10_000]);
    assert.deepEqual(svc.events('parked'), []);
    assert.deepEqual(svc.events('path-failed'), []);
    const status = await runLoft(['-c', setup.toml, '--status', '--log-format', 'json'], setup.env);
    const q = (
      JSON.parse(status.stdout) as { queue: { pending: number; retrying: number; parked: number } }
    ).queue;
    assert.deepEqual([q.pending, q.retrying, q.parked], [1, 0, 0], 'queued, no attempt charged');

    outage.times = 0; // S3 is back
    await svc.waitEvent('uploaded', (l) => l.path === p, 60_000);
    assert.ok(await hasNarInfo(cache.client, cache.bucket, p!));
    assert.equal(await svc.stop(), 0);
    assert.deepEqual((await checkCacheIntegrity(cache.client, cache.bucket)).problems, []);
  } finally {
    if (svc?.running) await svc.kill9();
    await proxy.close();
    await store.stop();
    rmSync(setup.dir, { recursive: true, force: true });
  }
});
