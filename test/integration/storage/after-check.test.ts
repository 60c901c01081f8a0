/**
 * A store behind a bucket check that has not answered yet (storage/after-check.ts), against
 * Ceph RGW through a logging proxy: reads reach the server alongside the check, writes only
 * once it answers; once it passes, every kind of request goes through; when it fails, every
 * request fails with the check's own error (a read's own answer, even "not found", is
 * dropped), no write reaches the server, and an upload's source is destroyed. And through
 * the `loft` binary: an upload to a bucket that does not exist still exits with the
 * environment code and the bucket's own error, and a path outside the store, resolved while
 * the check runs, is reported before it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { afterCheck } from '../../../src/storage/after-check.js';
import { createS3Store } from '../../../src/storage/s3-store.js';
import { isLoftError } from '../../../src/util/errors.js';
import { nixBuild } from '../../support/nix.js';
import { makePublicCache } from '../../support/cache.js';
import { listKeysRaw, s3TestEnv, startFaultProxy, storeOptions } from '../../support/s3.js';
import { runLoft, setupService } from '../service/support.js';
import { collect } from '../../support/iter.js';

const env = s3TestEnv();

test('behind a pending bucket check, reads reach the server at once and writes only once it passes; then all go through', async () => {
  const { client, bucket } = await makePublicCache('after-check');
  const proxy = await startFaultProxy(env.endpoint);
  const store = createS3Store(storeOptions(bucket, { endpoint: proxy.url }));
  try {
    let pass!: () => void;
    const gated = afterCheck(store, new Promise<void>((r) => (pass = r)));
    const requests = Promise.all([
      gated.put('after-check/a', 'one'),
      gated.upload('after-check/b', Readable.from([Buffer.from('two')])),
      gated.head('after-check/none'),
      collect(gated.list('after-check/')),
    ]);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(
      proxy.log.map((l) => l.method).sort(),
      ['GET', 'HEAD'],
      'the HEAD and the listing went out, neither write did',
    );
    pass();
    const [, uploaded, head] = await requests;
    assert.equal(uploaded.size, 3);
    assert.equal(head, undefined);
    assert.ok(proxy.log.length >= 4, `every request went through: ${proxy.log.length}`);
    assert.deepEqual((await listKeysRaw(client, bucket, 'after-check/')).sort(), [
      'after-check/a',
      'after-check/b',
    ]);
  } finally {
    await store.close();
    await proxy.close();
  }
});

test('a failed bucket check is the error of every request, reads included, and no write reaches the server', async () => {
  const proxy = await startFaultProxy(env.endpoint);
  const missing = 'loft-after-check-no-such-bucket';
  const store = createS3Store(storeOptions(missing, { endpoint: proxy.url }));
  try {
    const gated = afterCheck(store, store.check());
    // Alone, a HEAD of a key in a missing bucket is a bare 404: "not there", not an error.
    const head = gated.head('k3');
    const noBucket = (e: unknown) => isLoftError(e, 'S3_NO_SUCH_BUCKET');
    await assert.rejects(head, noBucket);
    await assert.rejects(gated.put('k', 'v'), noBucket);
    const source = Readable.from([Buffer.from('body')]);
    await assert.rejects(gated.upload('k2', source), noBucket);
    assert.equal(source.destroyed, true, 'the upload source is destroyed');
    await assert.rejects(collect(gated.list('')), noBucket);
    await assert.rejects(gated.check(), noBucket);
    // The check's own request(s) and the reads, no write.
    assert.deepEqual(
      proxy.log.filter((l) => !['HEAD', 'GET'].includes(l.method)),
      [],
      JSON.stringify(proxy.log),
    );
    assert.ok(
      proxy.log.some((l) => l.method === 'HEAD' && l.path === `/${missing}/k3`),
      'the read went out alongside the check',
    );
  } finally {
    await store.close();
    await proxy.close();
  }
});

test('an upload to a bucket that does not exist exits with the environment code, naming the bucket, without a stack trace; a path outside the store is reported first', async () => {
  const cache = await makePublicCache('after-check-cli');
  const setup = setupService(cache, undefined, {}, { bucket: '"loft-after-check-gone"' });
  const [p] = await nixBuild(`mk "after-check-cli" "echo x > $out"`);
  const r = await runLoft(['-c', setup.toml, '--upload-path', p!], setup.env);
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, /loft-after-check-gone/);
  assert.match(r.stderr, /create the bucket/);
  assert.ok(!/\n\s+at /.test(r.stderr), `no stack trace: ${r.stderr}`);
  // The paths are resolved while the check runs: a path outside the store is reported first.
  const bad = await runLoft(['-c', setup.toml, '--upload-path', '/usr/bin/env'], setup.env);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /is not in the Nix store/);
});
