/**
 * Streamed uploads against real Ceph RGW: multipart round trip, single PUT for small
 * bodies, and no multipart upload left behind by any failure or abort.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CreateMultipartUploadCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { createS3Store } from '../../../src/storage/s3-store.js';
import { isLoftError } from '../../../src/util/errors.js';
import {
  createBucket,
  hashObject,
  listKeysRaw,
  listMultipartUploadsRaw,
  patternSha256,
  patternStream,
  s3TestEnv,
  storeOptions,
  testS3Client,
} from '../../support/s3.js';
import { collect } from '../../support/iter.js';

const MiB = 1024 * 1024;
const env = s3TestEnv();
const client = testS3Client(env);
let bucket: string;

before(async () => {
  bucket = await createBucket(client, 'upload');
});
after(() => client.destroy());

test('a 64 MiB stream of unknown length round-trips byte-exact through multipart', async () => {
  const size = 64 * MiB + 4321;
  const store = createS3Store(storeOptions(bucket, { memoryBudgetBytes: 32 * MiB }));
  const progress: number[] = [];
  const r = await store.upload('nar/big.nar.zst', patternStream(size, 'big'), {
    contentType: 'application/x-nix-nar',
    onProgress: (n) => progress.push(n),
  });
  assert.deepEqual(r, { size, parts: 9, multipart: true });
  assert.equal(progress.at(-1), size);
  const got = await hashObject(client, bucket, 'nar/big.nar.zst');
  assert.equal(got.size, size);
  assert.equal(got.sha256, await patternSha256(size, 'big'));
  const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'nar/big.nar.zst' }));
  assert.equal(head.ContentType, 'application/x-nix-nar');
  // A multipart ETag ends in "-<parts>": proof it was assembled from parts, not one PUT.
  assert.match(head.ETag ?? '', /-9"?$/);
  const mem = store.memoryUse;
  assert.ok(mem.peak <= 32 * MiB, `part buffers peaked at ${mem.peak}`);
  assert.equal(mem.inUse, 0);
  assert.deepEqual(await listMultipartUploadsRaw(client, bucket), []);
  await store.close();
});

test('a body that fits in one part is a single PUT; an empty body is an empty object', async () => {
  const store = createS3Store(storeOptions(bucket));
  const r = await store.upload('nar/small.nar', patternStream(300_000, 'small'));
  assert.deepEqual(r, { size: 300_000, parts: 1, multipart: false });
  const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'nar/small.nar' }));
  assert.doesNotMatch(head.ETag ?? '', /-\d+"?$/);
  assert.equal(
    (await hashObject(client, bucket, 'nar/small.nar')).sha256,
    await patternSha256(300_000, 'small'),
  );
  assert.deepEqual(await store.upload('empty', patternStream(0, 'x')), {
    size: 0,
    parts: 1,
    multipart: false,
  });
  assert.equal((await store.head('empty'))?.size, 0);
  await store.close();
});

test('parallel uploads on one store share the part budget and all arrive intact', async () => {
  const store = createS3Store(
    storeOptions(bucket, { memoryBudgetBytes: 24 * MiB, partConcurrency: 4 }),
  );
  const sizes = [20 * MiB + 1, 17 * MiB + 2, 9 * MiB + 3, 1 * MiB];
  const results = await Promise.all(
    sizes.map((size, i) => store.upload(`par/${i}`, patternStream(size, `par${i}`))),
  );
  assert.deepEqual(
    results.map((r) => r.size),
    sizes,
  );
  for (const [i, size] of sizes.entries()) {
    assert.equal(
      (await hashObject(client, bucket, `par/${i}`)).sha256,
      await patternSha256(size, `par${i}`),
    );
  }
  assert.ok(store.memoryUse.peak <= 24 * MiB, `peak ${store.memoryUse.peak}`);
  await store.close();
});

test('a source that fails midway aborts the upload: no object, no multipart upload left', async () => {
  const store = createS3Store(storeOptions(bucket));
  const broken = new Error('NAR stream broke');
  async function* source() {
    yield* patternStream(20 * MiB, 'broken');
    throw broken;
  }
  await assert.rejects(store.upload('nar/broken.nar', source()), (e) => e === broken);
  assert.deepEqual(await listMultipartUploadsRaw(client, bucket), []);
  assert.equal(await store.head('nar/broken.nar'), undefined);
  await store.close();
});

test('an abort signal mid-upload is STORAGE_ABORTED and leaves no multipart upload', async () => {
  const store = createS3Store(storeOptions(bucket));
  const ctrl = new AbortController();
  const source = patternStream(200 * MiB, 'aborted');
  await assert.rejects(
    store.upload('nar/aborted.nar', source, {
      signal: ctrl.signal,
      onProgress: (n) => n >= 16 * MiB && ctrl.abort(),
    }),
    (e) => isLoftError(e, 'STORAGE_ABORTED'),
  );
  assert.ok(source.destroyed);
  assert.deepEqual(await listMultipartUploadsRaw(client, bucket), []);
  assert.equal(await store.head('nar/aborted.nar'), undefined);
  await store.close();
});

test('stale multipart uploads are listed and aborted through the store', async () => {
  const store = createS3Store(storeOptions(bucket));
  const started = await client.send(
    new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'stale/nar/x.nar' }),
  );
  const pending = await collect(store.listMultipartUploads('stale/'));
  assert.deepEqual(
    pending.map((p) => [p.key, p.uploadId]),
    [['stale/nar/x.nar', started.UploadId]],
  );
  assert.ok(pending[0]!.initiated instanceof Date);
  assert.deepEqual(await collect(store.listMultipartUploads('other/')), []);
  await store.abortMultipartUpload('stale/nar/x.nar', started.UploadId!);
  await store.abortMultipartUpload('stale/nar/x.nar', started.UploadId!); // already gone: fine
  assert.deepEqual(await listMultipartUploadsRaw(client, bucket), []);
  assert.ok(!(await listKeysRaw(client, bucket)).includes('stale/nar/x.nar'));
  await store.close();
});
