/**
 * The service's /metrics while it runs (real nix-daemon with a chroot store, RGW): scrapes
 * parse with a strict text-format parser of the test's own, and the upload counters match
 * what the bucket holds, read with a plain S3 client. The same run checks the
 * Cache-Control headers of the objects it wrote.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { nixBuild, nixRequisites } from '../../support/nix.js';
import { makePublicCache } from '../../support/cache.js';
import { parsePrometheusText, sampleValue } from '../../support/prom-parse.js';
import { ServiceProcess, setupService, startChrootStore } from '../service/support.js';

test('a scrape of /metrics during a service run parses and its counters match the bucket', async () => {
  const cache = await makePublicCache('metrics');
  const store = await startChrootStore();
  const setup = setupService(cache, store, {
    scan_on_startup: 'true',
    metrics_listen: '":0"',
    cache_control_narinfo: '"public, max-age=300"',
    cache_control_nar: '"public, max-age=31536000, immutable"',
  });
  let svc: ServiceProcess | undefined;
  try {
    const [top] = await nixBuild(`
      let a = mk "m-a" "head -c 300000 /dev/urandom > $out";
          b = mk "m-b" "echo \${a} > $out";
      in mk "m-top" "echo \${b} > $out"`);
    const closure = await nixRequisites([top!]);
    assert.equal(closure.length, 3);
    await store.add([top!]);
    svc = new ServiceProcess(setup);
    const url = String((await svc.waitEvent('metrics')).url);
    // ":0" means loopback, on a port the system picks.
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const scrape = async () => {
      const r = await fetch(url);
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      return parsePrometheusText(await r.text());
    };
    const early = await scrape();
    assert.equal(early.get('loft_uploaded_paths_total')?.type, 'counter');
    assert.equal(early.get('loft_upload_duration_seconds')?.type, 'histogram');
    assert.equal((await fetch(url.replace('/metrics', '/other'))).status, 404);

    await svc.waitEvent('scan-complete');
    const m = await scrape();

    // The bucket, read independently.
    const listed = await cache.client.send(new ListObjectsV2Command({ Bucket: cache.bucket }));
    const objects = listed.Contents ?? [];
    const narinfos = objects.filter((o) => o.Key!.endsWith('.narinfo'));
    const nars = objects.filter((o) => o.Key!.startsWith('nar/'));
    assert.equal(narinfos.length, 3);
    let narBytes = 0;
    for (const o of narinfos) {
      const body = await cache.client.send(
        new GetObjectCommand({ Bucket: cache.bucket, Key: o.Key! }),
      );
      narBytes += Number(/^NarSize: (\d+)$/m.exec(await body.Body!.transformToString())![1]);
    }
    const fileBytes = nars.reduce((n, o) => n + o.Size!, 0);

    assert.equal(sampleValue(m, 'loft_uploaded_paths_total'), narinfos.length);
    assert.equal(sampleValue(m, 'loft_uploaded_nar_bytes_total'), narBytes);
    assert.equal(sampleValue(m, 'loft_uploaded_file_bytes_total'), fileBytes);
    assert.equal(sampleValue(m, 'loft_upload_duration_seconds_count'), narinfos.length);
    assert.equal(sampleValue(m, 'loft_queue_pending_paths'), 0);
    assert.equal(sampleValue(m, 'loft_queue_parked_paths'), 0);
    assert.equal(sampleValue(m, 'loft_queue_oldest_pending_age_seconds'), 0);
    // Three narinfos and nix-cache-info went up by PutObject (small NARs too: at least 3 more).
    const puts = sampleValue(m, 'loft_s3_requests_total', { operation: 'PutObject', status: 'ok' });
    assert.ok(puts !== undefined && puts >= 3 + 1 + 3, `PutObject ok: ${puts}`);
    assert.equal(m.get('loft_upload_failures_total')?.samples.length, 0);

    // Cache-Control on what was written.
    const head = (key: string) =>
      cache.client.send(new HeadObjectCommand({ Bucket: cache.bucket, Key: key }));
    assert.equal((await head(narinfos[0]!.Key!)).CacheControl, 'public, max-age=300');
    assert.equal((await head(nars[0]!.Key!)).CacheControl, 'public, max-age=31536000, immutable');

    assert.equal(await svc.stop(), 0);
  } finally {
    if (svc?.running) await svc.kill9();
    await store.stop();
    rmSync(setup.dir, { recursive: true, force: true });
  }
});
