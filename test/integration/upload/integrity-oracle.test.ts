/**
 * The test oracle checkCacheIntegrity can fail for the right reasons: after a real push
 * it finds nothing wrong, and then it names each kind of damage done to the bucket behind
 * Loft's back (a NAR truncated, a NAR's bytes replaced at the same size, a reference's
 * narinfo deleted).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { nixBuild, nixRequisites } from '../../support/nix.js';
import { checkCacheIntegrity, makePublicCache } from '../../support/cache.js';
import { listKeysRaw } from '../../support/s3.js';
import { openPushContext } from '../../support/push.js';
import { push } from '../../../src/upload/push.js';

test('checkCacheIntegrity reports truncated and replaced NARs and missing references', async () => {
  const cache = await makePublicCache('oracle');
  const [top] = await nixBuild(`
    let dep = mk "oracle-dep" "mkdir $out; head -c 100000 /dev/urandom > $out/data";
    in mk "oracle-top" "echo \${dep} > $out"`);
  const closure = await nixRequisites([top!]);
  assert.equal(closure.length, 2);
  const ctx = await openPushContext({ bucket: cache.bucket, key: cache.key });
  try {
    const r = await push(ctx, [top!], { uploadThreads: 2, skipSignedByKeys: [] });
    assert.equal(r.complete, true, JSON.stringify(r.failed));
  } finally {
    await ctx.close();
  }
  assert.deepEqual((await checkCacheIntegrity(cache.client, cache.bucket)).problems, []);

  const { client, bucket } = cache;
  const get = async (key: string) => {
    const o = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await o.Body!.transformToByteArray());
  };
  const put = (key: string, body: Buffer) =>
    client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  const hashPart = (p: string) => p.split('/').pop()!.slice(0, 32);
  const depPath = closure.find((p) => p !== top)!;
  const urlOf = async (p: string) =>
    /^URL: (.*)$/m.exec((await get(`${hashPart(p)}.narinfo`)).toString())![1]!;

  // Same size, other bytes: only the hash can tell.
  const topNar = await urlOf(top!);
  const original = await get(topNar);
  const flipped = Buffer.from(original);
  flipped[flipped.length >> 1]! ^= 0xff;
  await put(topNar, flipped);
  let problems = (await checkCacheIntegrity(client, bucket)).problems;
  assert.equal(problems.length, 1, problems.join('\n'));
  assert.match(problems[0]!, /FileHash .* but .* hashes to/);

  // Truncated: size and hash both differ.
  const depNar = await urlOf(depPath);
  await put(depNar, (await get(depNar)).subarray(0, 1000));
  problems = (await checkCacheIntegrity(client, bucket)).problems;
  assert.ok(
    problems.some((p) => /FileSize \d+ but .* has 1000 bytes/.test(p)),
    problems.join('\n'),
  );

  // A referenced narinfo gone: the referrer's closure is broken.
  await client.send(
    new DeleteObjectCommand({ Bucket: bucket, Key: `${hashPart(depPath)}.narinfo` }),
  );
  problems = (await checkCacheIntegrity(client, bucket)).problems;
  assert.ok(
    problems.some((p) => p.includes(`reference ${depPath.split('/').pop()} has no narinfo`)),
    problems.join('\n'),
  );
  assert.ok((await listKeysRaw(client, bucket)).includes(topNar));
});
