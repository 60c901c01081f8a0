/**
 * `--populate-cache` (and `populate_cache_on_startup`) fill the local index from one listing
 * of the bucket's narinfos, with their LastModified as narinfo times, so a following push
 * of the same closure asks the bucket nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { nixBuild } from '../../support/nix.js';
import { makePublicCache } from '../../support/cache.js';
import { countingBlobs } from '../../support/blobs.js';
import { openPushContext } from '../../support/push.js';
import { storeOptions } from '../../support/s3.js';
import { createS3Store } from '../../../src/storage/index.js';
import { LocalIndex } from '../../../src/index/local-index.js';
import { push } from '../../../src/upload/push.js';
import { ServiceProcess, runLoft, setupService, startChrootStore } from './support.js';

test('populate fills the index so a following push plans without asking the bucket', async () => {
  const cache = await makePublicCache('svc-populate');
  const setup = setupService(cache, undefined);
  const [top] = await nixBuild(`
    let
      a = mk "pop-a" "mkdir $out; echo a > $out/f";
      b = mk "pop-b" "mkdir $out; echo \${a} > $out/f";
    in mk "pop-top" "mkdir $out; echo \${a} \${b} > $out/f"`);
  // Someone else filled the bucket (no local index here).
  const pusher = await openPushContext({ bucket: cache.bucket, key: cache.key });
  try {
    const r = await push(pusher, [top!], { uploadThreads: 2, skipSignedByKeys: [] });
    assert.equal(r.uploaded.length, 3);
  } finally {
    await pusher.close();
  }
  const listed = await cache.client.send(new ListObjectsV2Command({ Bucket: cache.bucket }));
  const lastModified = new Map(
    (listed.Contents ?? [])
      .filter((o) => o.Key!.endsWith('.narinfo'))
      .map((o) => [o.Key!.slice(0, 32), o.LastModified!.getTime()]),
  );
  assert.equal(lastModified.size, 3);

  try {
    const r = await runLoft(['-c', setup.toml, '--populate-cache'], setup.env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /populated the local cache: 3 narinfos listed/);

    const blobs = createS3Store(storeOptions(cache.bucket));
    const index = LocalIndex.open(setup.dbPath, blobs.id);
    const counted = countingBlobs(blobs);
    const ctx = await openPushContext({
      bucket: cache.bucket,
      key: cache.key,
      index,
      blobs: counted,
    });
    try {
      assert.equal(index.countPresent(), 3);
      const entries = index.getPresentMany([...lastModified.keys()]);
      for (const [hp, t] of lastModified) {
        assert.equal(entries.get(hp)?.narinfoTime, t, `narinfo time of ${hp} is its LastModified`);
      }
      const again = await push(ctx, [top!], {
        uploadThreads: 2,
        skipSignedByKeys: [],
        refreshAfterMs: 15 * 86_400_000,
      });
      assert.equal(again.uploaded.length, 0);
      assert.equal(again.summary.alreadyCached.paths, 3);
      assert.deepEqual(
        { heads: counted.heads, lists: counted.lists, copies: counted.copies },
        // The plan asked nothing; the lease protocol then HEADs its lease, lists the prune
        // intents, and re-checks the three cached paths it relies on.
        { heads: 1 + 3, lists: 1, copies: 0 },
        'the index answered the plan; only the lease protocol asked the bucket',
      );
    } finally {
      await ctx.close();
      index.close();
    }
  } finally {
    rmSync(setup.dir, { recursive: true, force: true });
  }
});

test('populate_cache_on_startup fills the index before the service looks at anything', async () => {
  const cache = await makePublicCache('svc-populate-start');
  const store = await startChrootStore();
  const setup = setupService(cache, store, { populate_cache_on_startup: 'true' });
  const [p] = await nixBuild(`mk "pop-start" "mkdir $out; echo s > $out/f"`);
  const pusher = await openPushContext({ bucket: cache.bucket, key: cache.key });
  let svc: ServiceProcess | undefined;
  try {
    await push(pusher, [p!], { uploadThreads: 1, skipSignedByKeys: [] });
    svc = new ServiceProcess(setup);
    const populated = await svc.waitEvent('populated');
    assert.equal(populated.narInfos, 1);
    const ready = await svc.waitEvent('ready');
    assert.ok(svc.lines.indexOf(populated) < svc.lines.indexOf(ready));
    assert.equal(await svc.stop(), 0);
    const status = await runLoft(['-c', setup.toml, '--status', '--log-format', 'json'], setup.env);
    const report = JSON.parse(status.stdout) as { index: { presentPaths: number } };
    assert.equal(report.index.presentPaths, 1);
  } finally {
    if (svc?.running) await svc.kill9();
    await pusher.close();
    await store.stop();
    rmSync(setup.dir, { recursive: true, force: true });
  }
});
