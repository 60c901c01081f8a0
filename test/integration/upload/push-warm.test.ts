/**
 * Which requests open connections ahead of uploads, seen at an HTTP proxy in front of RGW:
 * a push that uploads sends the warming HEADs of the bucket; a push with nothing to upload
 * sends the bucket check alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nixBuild } from '../../support/nix.js';
import { makePublicCache } from '../../support/cache.js';
import { s3TestEnv, startFaultProxy, storeOptions } from '../../support/s3.js';
import { openPushContext } from '../../support/push.js';
import { LocalIndex } from '../../../src/index/local-index.js';
import { createS3Store } from '../../../src/storage/index.js';
import { push } from '../../../src/upload/push.js';

test('a push that uploads opens its connections with HEADs of the bucket; a push with nothing to upload sends no HEAD of the bucket but the check; a store warms once', async () => {
  const cache = await makePublicCache('push-warm');
  const [top] = await nixBuild(`
    let a = mk "warm-a" "mkdir $out; echo a > $out/f"; in mk "warm-top" "echo \${a} > $out"`);
  const proxy = await startFaultProxy(s3TestEnv().endpoint);
  const index = LocalIndex.open(join(mkdtempSync(join(tmpdir(), 'loft-index-')), 'i.db'), 'c');
  const opts = { uploadThreads: 2, skipSignedByKeys: [] };
  const bucketHeads = () =>
    proxy.log.filter((r) => r.method === 'HEAD' && r.path === `/${cache.bucket}`);
  const pushOnce = async () => {
    const blobs = createS3Store(
      storeOptions(cache.bucket, { endpoint: proxy.url, warmConnections: 4 }),
    );
    const ctx = await openPushContext({ bucket: cache.bucket, key: cache.key, index, blobs });
    try {
      await blobs.check();
      return await push(ctx, [top!], opts);
    } finally {
      await ctx.close();
    }
  };
  try {
    const first = await pushOnce();
    assert.equal(first.uploaded.length, 2);
    assert.equal(bucketHeads().length, 1 + 3, 'the check, then 3 warming HEADs');

    proxy.log.length = 0;
    const second = await pushOnce();
    assert.equal(second.uploaded.length, 0);
    assert.equal(bucketHeads().length, 1, 'the check alone');

    // A store warms once: a service's later batches find their connections open.
    proxy.log.length = 0;
    const blobs = createS3Store(
      storeOptions(cache.bucket, { endpoint: proxy.url, warmConnections: 4 }),
    );
    try {
      blobs.warm!();
      blobs.warm!();
      await blobs.check();
      const deadline = Date.now() + 5000;
      while (bucketHeads().length < 4 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      // Any HEAD a second warming sent would have arrived with the first ones by now.
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(bucketHeads().length, 3 + 1, 'one warming of 3 HEADs, and the check');
    } finally {
      await blobs.close();
    }
  } finally {
    index.close();
    await proxy.close();
  }
});
