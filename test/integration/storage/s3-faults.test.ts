/**
 * Retries through a fault-injecting proxy of our own in front of RGW: 500s, 503 SlowDown
 * with Retry-After, connections dropped mid-request and mid-response, stalls. Each ends in
 * success without duplicate or corrupt objects; permanent errors fail at once; batch
 * delete falls back to single deletes when the server rejects it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createS3Store } from '../../../src/storage/s3-store.js';
import { isLoftError } from '../../../src/util/errors.js';
import { MemoryLogger } from '../../../src/util/log.js';
import {
  createBucket,
  hashObject,
  listKeysRaw,
  listMultipartUploadsRaw,
  patternSha256,
  patternStream,
  s3TestEnv,
  startFaultProxy,
  storeOptions,
  testS3Client,
  type FaultRule,
  type ProxyRequest,
} from '../../support/s3.js';

const MiB = 1024 * 1024;
const env = s3TestEnv();
const client = testS3Client(env);
let bucket: string;

before(async () => {
  bucket = await createBucket(client, 'faults');
});
after(() => client.destroy());

const onKey = (key: string) => (r: ProxyRequest) => r.path === `/${bucket}/${key}`;
const isPart = (key: string, n: number) => (r: ProxyRequest) =>
  r.method === 'PUT' && onKey(key)(r) && r.query.get('partNumber') === String(n);
const isComplete = (key: string) => (r: ProxyRequest) =>
  r.method === 'POST' && onKey(key)(r) && r.query.has('uploadId');

async function withProxy(
  rules: FaultRule[],
  fn: (p: Awaited<ReturnType<typeof startFaultProxy>>) => Promise<void>,
) {
  const proxy = await startFaultProxy(env.endpoint, rules);
  try {
    await fn(proxy);
  } finally {
    await proxy.close();
  }
}

test('a PUT survives a 500, a 503 SlowDown with Retry-After and a dropped connection', async () => {
  const key = 'put/x.narinfo';
  const isPut = (r: ProxyRequest) => r.method === 'PUT' && onKey(key)(r);
  const body = Buffer.from(await patternSha256(1, 'x'))
    .toString('hex')
    .repeat(2000);
  await withProxy(
    [
      {
        name: '500',
        match: isPut,
        action: { kind: 'status', status: 500, code: 'InternalError' },
        times: 1,
      },
      {
        name: 'slowdown',
        match: isPut,
        action: { kind: 'status', status: 503, code: 'SlowDown', retryAfter: '1' },
        times: 1,
      },
      { name: 'drop', match: isPut, action: { kind: 'drop-request', afterBytes: 1000 }, times: 1 },
      { name: 'lost answer', match: isPut, action: { kind: 'drop-response' }, times: 1 },
    ],
    async (proxy) => {
      const logger = new MemoryLogger();
      const store = createS3Store(storeOptions(bucket, { endpoint: proxy.url, logger }));
      await store.put(key, body, { contentType: 'text/x-nix-narinfo' });
      const puts = proxy.log.filter((l) => l.method === 'PUT');
      assert.deepEqual(
        puts.map((l) => l.fault),
        ['500', 'slowdown', 'drop', 'lost answer', undefined],
      );
      // Backoff in these tests is at most 100 ms, so a wait of ~1 s is Retry-After's doing.
      const waited = puts[2]!.at - puts[1]!.at;
      assert.ok(waited >= 950, `waited ${waited} ms after SlowDown`);
      assert.equal(logger.lines.filter((l) => l.msg.includes('retrying')).length, 4);
      assert.deepEqual(await listKeysRaw(client, bucket, 'put/'), [key]);
      assert.equal(String(await store.get(key)), body);
      await store.close();
    },
  );
});

test('a multipart upload survives faults on parts and a lost Complete answer, intact', async () => {
  const key = 'mp/nar/x.nar.zst';
  const size = 26 * MiB + 99;
  await withProxy(
    [
      {
        name: 'part 1 slowdown',
        match: isPart(key, 1),
        action: { kind: 'status', status: 503, code: 'SlowDown', retryAfter: '0' },
        times: 1,
      },
      {
        name: 'part 2 500',
        match: isPart(key, 2),
        action: { kind: 'status', status: 500, code: 'InternalError' },
        times: 2,
      },
      {
        name: 'part 3 cut',
        match: isPart(key, 3),
        action: { kind: 'drop-request', afterBytes: MiB },
        times: 1,
      },
      {
        name: 'part 4 lost answer',
        match: isPart(key, 4),
        action: { kind: 'drop-response' },
        times: 1,
      },
      {
        name: 'complete lost answer',
        match: isComplete(key),
        action: { kind: 'drop-response' },
        times: 1,
      },
    ],
    async (proxy) => {
      const store = createS3Store(storeOptions(bucket, { endpoint: proxy.url }));
      const r = await store.upload(key, patternStream(size, 'mp'));
      assert.deepEqual(r, { size, parts: 4, multipart: true });
      const faults = proxy.log
        .filter((l) => l.fault)
        .map((l) => l.fault)
        .sort();
      assert.deepEqual(faults, [
        'complete lost answer',
        'part 1 slowdown',
        'part 2 500',
        'part 2 500',
        'part 3 cut',
        'part 4 lost answer',
      ]);
      assert.ok(
        proxy.log.filter((l) => l.method === 'POST' && l.query.includes('uploadId')).length >= 2,
        'Complete was retried',
      );
      const got = await hashObject(client, bucket, key);
      assert.equal(got.size, size);
      assert.equal(got.sha256, await patternSha256(size, 'mp'));
      assert.deepEqual(await listKeysRaw(client, bucket, 'mp/'), [key]);
      assert.deepEqual(await listMultipartUploadsRaw(client, bucket), []);
      await store.close();
    },
  );
});

test('a lost Complete answer followed by NoSuchUpload counts as done when the object is whole', async () => {
  // RGW (like AWS) accepts a repeated Complete; some servers answer NoSuchUpload instead.
  const key = 'mp2/nar/y.nar';
  const size = 9 * MiB;
  await withProxy(
    [
      { name: 'lost answer', match: isComplete(key), action: { kind: 'drop-response' }, times: 1 },
      {
        name: 'no such upload',
        match: isComplete(key),
        action: { kind: 'status', status: 404, code: 'NoSuchUpload' },
        times: 1,
      },
    ],
    async (proxy) => {
      const store = createS3Store(storeOptions(bucket, { endpoint: proxy.url }));
      const r = await store.upload(key, patternStream(size, 'mp2'));
      assert.deepEqual(r, { size, parts: 2, multipart: true });
      assert.deepEqual(
        proxy.log.filter((l) => l.fault).map((l) => l.fault),
        ['lost answer', 'no such upload'],
      );
      assert.equal(
        (await hashObject(client, bucket, key)).sha256,
        await patternSha256(size, 'mp2'),
      );
      assert.deepEqual(await listMultipartUploadsRaw(client, bucket), []);
      await store.close();
    },
  );
});

test('a GET cut off mid-body and a stalled request are retried', async () => {
  const key = 'get/obj';
  const body = Buffer.alloc(3 * MiB, 7);
  body.write('start', 0);
  body.write('end', body.length - 3);
  await client.send(
    new (await import('@aws-sdk/client-s3')).PutObjectCommand({
      Bucket: bucket,
      Key: key,
      Body: body,
    }),
  );
  const isGet = (r: ProxyRequest) => r.method === 'GET' && onKey(key)(r);
  await withProxy(
    [
      {
        name: 'cut',
        match: isGet,
        action: { kind: 'truncate-response', afterBytes: MiB },
        times: 1,
      },
      { name: 'stall', match: isGet, action: { kind: 'stall' }, times: 1 },
    ],
    async (proxy) => {
      const store = createS3Store(
        storeOptions(bucket, { endpoint: proxy.url, idleTimeoutMs: 700 }),
      );
      const got = await store.get(key);
      assert.ok(got?.equals(body), 'whole and exact');
      assert.deepEqual(
        proxy.log.filter((l) => l.method === 'GET').map((l) => l.fault),
        ['cut', 'stall', undefined],
      );
      await store.close();
    },
  );
});

test('a permanent 4xx fails at once; persistent 5xx fail after maxAttempts and the upload is aborted', async () => {
  const key = 'perm/nar/y.nar';
  await withProxy(
    [
      {
        name: 'bad request',
        match: (r) => r.method === 'PUT' && onKey('perm/a')(r),
        action: { kind: 'status', status: 400, code: 'InvalidArgument' },
        times: 5,
      },
      {
        name: 'always 503',
        match: isPart(key, 2),
        action: { kind: 'status', status: 503, code: 'ServiceUnavailable' },
        times: 100,
      },
    ],
    async (proxy) => {
      const store = createS3Store(storeOptions(bucket, { endpoint: proxy.url, maxAttempts: 3 }));
      await assert.rejects(store.put('perm/a', 'x'), (e) => {
        assert.ok(isLoftError(e, 'S3_REQUEST_FAILED'), String(e));
        assert.match(e.message, /400 InvalidArgument/);
        return true;
      });
      assert.equal(proxy.log.filter((l) => l.fault === 'bad request').length, 1);

      await assert.rejects(store.upload(key, patternStream(20 * MiB, 'perm')), (e) => {
        assert.ok(isLoftError(e, 'S3_SERVER_ERROR'), String(e));
        assert.match(
          e.message,
          /UploadPart of "perm\/nar\/y.nar".*503 ServiceUnavailable.*\(after 3 attempts\)/,
        );
        return true;
      });
      assert.equal(proxy.log.filter((l) => l.fault === 'always 503').length, 3);
      assert.deepEqual(await listMultipartUploadsRaw(client, bucket), []);
      assert.deepEqual(await listKeysRaw(client, bucket, 'perm/'), []);
      await store.close();
    },
  );
});

test('when the server rejects batch delete, keys are deleted one by one', async () => {
  const keys = Array.from({ length: 30 }, (_, i) => `bd/${i}.narinfo`);
  const direct = createS3Store(storeOptions(bucket));
  await Promise.all(keys.map((k) => direct.put(k, k)));
  await direct.close();
  const isBatchDelete = (r: ProxyRequest) => r.method === 'POST' && r.query.has('delete');
  await withProxy(
    [
      {
        name: 'no batch delete',
        match: isBatchDelete,
        action: { kind: 'status', status: 501, code: 'NotImplemented' },
        times: 100,
      },
    ],
    async (proxy) => {
      const logger = new MemoryLogger();
      const store = createS3Store(storeOptions(bucket, { endpoint: proxy.url, logger }));
      await store.deleteMany(keys.slice(0, 20));
      assert.deepEqual((await listKeysRaw(client, bucket, 'bd/')).sort(), keys.slice(20).sort());
      await store.deleteMany([...keys.slice(20), 'bd/never-there']);
      assert.deepEqual(await listKeysRaw(client, bucket, 'bd/'), []);
      assert.equal(
        proxy.log.filter((l) => l.fault === 'no batch delete').length,
        1,
        'tried once, then remembered',
      );
      assert.equal(proxy.log.filter((l) => l.method === 'DELETE').length, 31);
      assert.equal(logger.lines.filter((l) => l.msg.includes('rejects batch delete')).length, 1);
      await store.close();
    },
  );
});
