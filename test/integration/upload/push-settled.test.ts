/**
 * A push with nothing to publish, against RGW and the real daemon: it takes no lease when
 * the local index confirmed its closure under the prune mark the bucket still shows, and a
 * prune between two pushes (which rewrites the mark) sends the second push through the
 * lease protocol, which finds what the prune deleted and uploads it again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nixBuild } from '../../support/nix.js';
import { assertCacheServes, makePublicCache } from '../../support/cache.js';
import { storeOptions } from '../../support/s3.js';
import { countingBlobs } from '../../support/blobs.js';
import { openPushContext } from '../../support/push.js';
import { LocalIndex } from '../../../src/index/local-index.js';
import { createS3Store } from '../../../src/storage/index.js';
import { PRUNE_MARK_KEY } from '../../../src/storage/prune-mark.js';
import { push } from '../../../src/upload/push.js';
import { prune } from '../../../src/prune/prune.js';
import { MemoryLogger } from '../../../src/util/log.js';
import { inventory, tinyCapPolicy } from '../prune/support.js';

async function threePaths(tag: string): Promise<string> {
  const [top] = await nixBuild(`
    let a = mk "${tag}-a" "mkdir $out; echo a > $out/f"; b = mk "${tag}-b" "echo \${a} > $out";
    in mk "${tag}-top" "echo \${b} > $out"`);
  return top!;
}

/** The real store, recording the keys of every write and read besides counting. */
function recordingBlobs(bucket: string) {
  const blobs = countingBlobs(createS3Store(storeOptions(bucket)));
  const puts: string[] = [];
  const gets: string[] = [];
  const put = blobs.put;
  const get = blobs.get;
  blobs.put = (k, b, o) => (puts.push(k), put(k, b, o));
  blobs.get = (k, o) => (gets.push(k), get(k, o));
  return Object.assign(blobs, { puts, gets });
}

test('a push with nothing to publish takes no lease and reads only the prune mark when the index confirmed its closure under it', async () => {
  const cache = await makePublicCache('push-settled');
  const top = await threePaths('settled');
  const blobs = recordingBlobs(cache.bucket);
  const index = LocalIndex.open(join(mkdtempSync(join(tmpdir(), 'loft-index-')), 'i.db'), blobs.id);
  const ctx = await openPushContext({ bucket: cache.bucket, key: cache.key, index, blobs });
  const opts = { uploadThreads: 2, skipSignedByKeys: [] };
  try {
    const first = await push(ctx, [top], opts);
    assert.equal(first.uploaded.length, 3);
    assert.ok(
      blobs.puts.some((k) => k.startsWith('loft/leases/')),
      'the first push publishes, so it takes a lease',
    );

    blobs.puts.length = 0;
    blobs.gets.length = 0;
    blobs.heads = 0;
    blobs.lists = 0;
    const second = await push(ctx, [top], opts);
    assert.equal(second.complete, true);
    assert.equal(second.uploaded.length, 0);
    assert.equal(second.summary.alreadyCached.paths, 3);
    assert.deepEqual([...blobs.puts], [], 'no lease written, nothing else either');
    assert.deepEqual([...blobs.gets], [PRUNE_MARK_KEY], 'one read: the prune mark');
    assert.equal(blobs.heads, 0);
    assert.equal(blobs.lists, 0);

    // With --force-scan the plan asks the bucket, so the lease protocol runs as before.
    blobs.puts.length = 0;
    const forced = await push(ctx, [top], { ...opts, ignoreIndex: true });
    assert.equal(forced.uploaded.length, 0);
    assert.ok(blobs.puts.some((k) => k.startsWith('loft/leases/')));
  } finally {
    await ctx.close();
    index.close();
  }
});

test('a prune that deleted the closure between two pushes is noticed by the second push, which uploads it again', async () => {
  const cache = await makePublicCache('push-settled-pruned');
  const top = await threePaths('pruned');
  const blobs = recordingBlobs(cache.bucket);
  const index = LocalIndex.open(join(mkdtempSync(join(tmpdir(), 'loft-index-')), 'i.db'), blobs.id);
  const ctx = await openPushContext({ bucket: cache.bucket, key: cache.key, index, blobs });
  const opts = { uploadThreads: 2, skipSignedByKeys: [] };
  try {
    assert.equal((await push(ctx, [top], opts)).uploaded.length, 3);
    // Another machine's prune (its own store object, no index of ours) deletes everything.
    const other = createS3Store(storeOptions(cache.bucket));
    try {
      const r = await prune({ blobs: other, logger: new MemoryLogger(), policy: tinyCapPolicy() });
      assert.equal(r.deleted.narInfos.count, 3, 'the prune deleted the whole closure');
    } finally {
      await other.close();
    }
    assert.equal((await inventory(cache.client, cache.bucket)).narInfos.length, 0);
    assert.equal(index.countPresent(), 3, 'our index still believes the closure is cached');

    blobs.puts.length = 0;
    const second = await push(ctx, [top], opts);
    assert.equal(second.complete, true);
    assert.equal(second.uploaded.length, 3, 'every pruned path is uploaded again');
    assert.ok(
      blobs.puts.some((k) => k.startsWith('loft/leases/')),
      'under a lease',
    );
    await assertCacheServes(cache, 3, [top]);
  } finally {
    await ctx.close();
    index.close();
  }
});
