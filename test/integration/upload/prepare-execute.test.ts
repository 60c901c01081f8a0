/**
 * Push in two steps against the real nix-daemon and RGW: preparePush() plans and writes
 * nothing (the bucket stays empty), executePlan() uploads exactly what the plan named, and
 * real Nix substitutes the result with signatures required.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nixBuild, nixRequisites } from '../../support/nix.js';
import { checkCacheIntegrity, makePublicCache, substituteFresh } from '../../support/cache.js';
import { listKeysRaw } from '../../support/s3.js';
import { openPushContext } from '../../support/push.js';
import { executePlan, preparePush } from '../../../src/upload/push.js';

test('preparePush writes nothing; executePlan uploads exactly the planned paths', async () => {
  const cache = await makePublicCache('push-prepare');
  const [top] = await nixBuild(`
    let a = mk "prep-a" "mkdir $out; echo a > $out/f";
    in mk "prep-top" "echo \${a} > $out"`);
  const closure = await nixRequisites([top!]);
  assert.equal(closure.length, 2);
  const ctx = await openPushContext({ bucket: cache.bucket, key: cache.key });
  try {
    const planning = { skipSignedByKeys: [] };
    const prepared = await preparePush(ctx, [top!], planning);
    assert.deepEqual(prepared.plan.toUpload.map((i) => i.path).sort(), [...closure].sort());
    assert.deepEqual(prepared.plan.excluded, []);
    assert.equal(prepared.summary.toUpload.paths, 2);
    assert.deepEqual(await listKeysRaw(cache.client, cache.bucket), [], 'planning wrote nothing');

    const r = await executePlan(ctx, prepared, { uploadThreads: 2 });
    assert.equal(r.complete, true, JSON.stringify(r.failed));
    assert.deepEqual(r.uploaded.map((u) => u.path).sort(), [...closure].sort());
    const report = await checkCacheIntegrity(cache.client, cache.bucket);
    assert.deepEqual(report.problems, []);
    assert.equal(report.narInfos, 2);
    await substituteFresh(cache.url, cache.publicKey, [top!]);

    const again = await preparePush(ctx, [top!], planning);
    assert.deepEqual(again.plan.toUpload, []);
    assert.equal(again.summary.alreadyCached.paths, 2);
  } finally {
    await ctx.close();
  }
});
