/**
 * The local index and refresh-on-use against RGW: a known path costs no bucket request,
 * a lost index costs requests but no uploads, and old narinfos get their LastModified
 * renewed before a push relies on them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { nixBuild, nixRequisites } from '../../support/nix.js';
import { assertCacheServes, makePublicCache } from '../../support/cache.js';
import { storeOptions } from '../../support/s3.js';
import { countingBlobs } from '../../support/blobs.js';
import { openPushContext } from '../../support/push.js';
import { LocalIndex } from '../../../src/index/local-index.js';
import { createS3Store } from '../../../src/storage/index.js';
import { push } from '../../../src/upload/push.js';

const DAY = 86_400_000;

async function twoLevelClosure(): Promise<string> {
  const [top] = await nixBuild(`
    let a = mk "idx-a" "mkdir $out; echo a > $out/f"; b = mk "idx-b" "echo \${a} > $out";
    in mk "idx-top" "echo \${b} > $out"`);
  return top!;
}

test('a second push with the index asks the bucket nothing but the prune mark; without the index, the plan and the lease protocol ask, and nothing is uploaded', async () => {
  const cache = await makePublicCache('push-index');
  const top = await twoLevelClosure();
  const dbDir = mkdtempSync(join(tmpdir(), 'loft-index-'));
  const blobs = countingBlobs(createS3Store(storeOptions(cache.bucket)));
  const index = LocalIndex.open(join(dbDir, 'cache.db'), blobs.id);
  const ctx = await openPushContext({ bucket: cache.bucket, key: cache.key, index, blobs });
  try {
    const first = await push(ctx, [top], { uploadThreads: 2, skipSignedByKeys: [] });
    assert.equal(first.uploaded.length, 3);
    assert.equal(index.countPresent(), 3, 'recorded after each narinfo write');

    blobs.heads = 0;
    blobs.lists = 0;
    const second = await push(ctx, [top], { uploadThreads: 2, skipSignedByKeys: [] });
    assert.equal(second.uploaded.length, 0);
    assert.equal(second.summary.alreadyCached.paths, 3);
    // The index answered the plan, and the prune mark (one GET, not counted here) is the
    // one the first push confirmed the closure under: no lease, no re-check.
    assert.equal(blobs.lists, 0);
    assert.equal(blobs.heads, 0);

    // Lose the index: the bucket is asked, and still nothing is uploaded.
    index.clearPresent();
    blobs.heads = 0;
    blobs.lists = 0;
    const third = await push(ctx, [top], { uploadThreads: 2, skipSignedByKeys: [] });
    assert.equal(third.uploaded.length, 0);
    // The plan asks (three HEADs); then the lease protocol: one HEAD of the lease just
    // written, one listing of prune intents, one HEAD per cached path relied on.
    assert.equal(blobs.lists, 1, 'the prune intents, listed once');
    assert.equal(blobs.heads, 3 + 1 + 3, 'the plan asks, then the lease protocol as above');
    assert.equal(index.countPresent(), 3, 'what the bucket said is remembered');

    // A different cache (bucket) never sees these entries.
    const other = LocalIndex.open(join(dbDir, 'cache.db'), `${blobs.id}-other`);
    assert.equal(other.countPresent(), 0);
    other.close();
  } finally {
    await ctx.close();
    index.close();
  }
});

test('refresh-on-use renews narinfos older than half the retention before relying on them', async () => {
  const cache = await makePublicCache('push-refresh');
  const top = await twoLevelClosure();
  const deps = (await nixRequisites([top])).filter((p) => p !== top);
  const dbDir = mkdtempSync(join(tmpdir(), 'loft-index-'));
  const blobs = countingBlobs(createS3Store(storeOptions(cache.bucket)));
  const index = LocalIndex.open(join(dbDir, 'cache.db'), blobs.id);
  const ctx = await openPushContext({ bucket: cache.bucket, key: cache.key, index, blobs });
  const lastModified = async (p: string) =>
    (
      await cache.client.send(
        new HeadObjectCommand({ Bucket: cache.bucket, Key: `${p.slice(11, 43)}.narinfo` }),
      )
    ).LastModified!;
  try {
    // Push only the dependencies; then, "20 days later", push the top, which relies on them.
    await push(ctx, [deps.find((p) => p.endsWith('-idx-b'))!], {
      uploadThreads: 2,
      skipSignedByKeys: [],
    });
    const before = await Promise.all(deps.map(lastModified));
    await new Promise((r) => setTimeout(r, 1100)); // LastModified has one-second resolution
    const later = new Date(Date.now() + 20 * DAY);
    const r = await push(ctx, [top], {
      uploadThreads: 2,
      skipSignedByKeys: [],
      refreshAfterMs: 15 * DAY,
      now: () => later,
    });
    assert.equal(r.refreshed, 2);
    assert.equal(blobs.copies, 2);
    const after = await Promise.all(deps.map(lastModified));
    after.forEach((t, i) => assert.ok(t > before[i]!, `${deps[i]} was refreshed`));
    assert.equal(index.getPresent(deps[0]!.slice(11, 43))?.narinfoTime, later.getTime());

    // Young again: the next push refreshes nothing.
    const again = await push(ctx, [top], {
      uploadThreads: 2,
      skipSignedByKeys: [],
      refreshAfterMs: 15 * DAY,
      now: () => later,
    });
    assert.equal(again.refreshed, 0);
  } finally {
    await ctx.close();
    index.close();
  }
});

test('a narinfo pruned between the plan and its refresh is uploaded again, not trusted', async () => {
  const cache = await makePublicCache('push-vanish');
  const top = await twoLevelClosure();
  const deps = (await nixRequisites([top])).filter((p) => p !== top);
  const dbDir = mkdtempSync(join(tmpdir(), 'loft-index-'));
  const real = createS3Store(storeOptions(cache.bucket));
  // Another machine's prune deletes a narinfo right before our refresh copies it.
  let deleted = 0;
  const racing = countingBlobs(real);
  racing.copy = async (from, to, opts) => {
    if (deleted++ === 0) {
      await cache.client.send(new DeleteObjectCommand({ Bucket: cache.bucket, Key: from }));
    }
    return real.copy(from, to, opts);
  };
  const index = LocalIndex.open(join(dbDir, 'cache.db'), real.id);
  const ctx = await openPushContext({ bucket: cache.bucket, key: cache.key, index, blobs: racing });
  try {
    await push(ctx, [deps.find((p) => p.endsWith('-idx-b'))!], {
      uploadThreads: 2,
      skipSignedByKeys: [],
    });
    const events: string[] = [];
    const r = await push(ctx, [top], {
      uploadThreads: 2,
      skipSignedByKeys: [],
      refreshAfterMs: 15 * DAY,
      now: () => new Date(Date.now() + 20 * DAY),
      onEvent: (e) => events.push(e.type),
    });
    assert.ok(events.includes('replanned'), events.join(','));
    assert.equal(r.complete, true);
    assert.equal(r.uploaded.length, 2, 'the top and the vanished dependency');
    await assertCacheServes(cache, 3, [top]);
  } finally {
    await ctx.close();
    index.close();
  }
});
