/**
 * Extra headers for an auth proxy, through a header-demanding proxy of our own in front of
 * RGW that strips them before forwarding (as Cloudflare Access does). RGW verifies every
 * signature, so a request that passes proves the headers were not signed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createS3Store } from '../../../src/storage/s3-store.js';
import { describeError, isLoftError } from '../../../src/util/errors.js';
import { MemoryLogger } from '../../../src/util/log.js';
import {
  createBucket,
  hashObject,
  patternSha256,
  patternStream,
  s3TestEnv,
  startHeaderProxy,
  storeOptions,
  testS3Client,
} from '../../support/s3.js';

const env = s3TestEnv();
const client = testS3Client(env);
const HEADERS = {
  'CF-Access-Client-Id': 'loft-test.access',
  'CF-Access-Client-Secret': 'cf-secret-0123456789abcdef',
};
let bucket: string;
let proxy: Awaited<ReturnType<typeof startHeaderProxy>>;

before(async () => {
  bucket = await createBucket(client, 'headers');
  proxy = await startHeaderProxy(env.endpoint, HEADERS);
});
after(async () => {
  await proxy.close();
  client.destroy();
});

test('without the headers the proxy turns requests away', async () => {
  const store = createS3Store(storeOptions(bucket, { endpoint: proxy.url }));
  const before = proxy.records.length;
  await assert.rejects(store.put('x', 'y'), (e) => isLoftError(e, 'S3_ACCESS_DENIED'));
  const seen = proxy.records.slice(before);
  assert.equal(seen.length, 1, '403 is not retried');
  assert.equal(seen[0]!.accepted, false);
  await store.close();
});

test('with the headers every kind of request passes, and none of them signed the headers', async () => {
  const logger = new MemoryLogger();
  const store = createS3Store(
    storeOptions(bucket, { endpoint: proxy.url, extraHeaders: HEADERS, logger }),
  );
  const before = proxy.records.length;
  await store.check();
  await store.put('h/small.narinfo', 'StorePath: x\n', { contentType: 'text/x-nix-narinfo' });
  assert.equal(String(await store.get('h/small.narinfo')), 'StorePath: x\n');
  assert.equal((await store.head('h/small.narinfo'))?.size, 13);
  const r = await store.upload('h/nar/big.nar', patternStream(12 * 1024 * 1024 + 7, 'hdr'));
  assert.equal(r.multipart, true);
  await store.copy('h/small.narinfo', 'h/copy.narinfo');
  const listed: string[] = [];
  for await (const o of store.list('h/')) listed.push(o.key);
  assert.deepEqual(listed.sort(), ['h/copy.narinfo', 'h/nar/big.nar', 'h/small.narinfo']);
  await store.deleteMany(['h/copy.narinfo']);

  const seen = proxy.records.slice(before);
  const methods = new Set(seen.map((s) => s.method));
  for (const m of ['HEAD', 'GET', 'PUT', 'POST']) assert.ok(methods.has(m), `a ${m} went through`);
  for (const s of seen) {
    assert.equal(s.accepted, true, `${s.method} ${s.path}`);
    assert.ok(s.signedHeaders.includes('host'), 'requests are signed');
    for (const name of Object.keys(HEADERS)) {
      assert.ok(!s.signedHeaders.includes(name.toLowerCase()), `${name} is not in SignedHeaders`);
    }
  }
  // RGW checked the signatures of requests that reached it without the headers:
  // the object is there and whole.
  assert.equal(
    (await hashObject(client, bucket, 'h/nar/big.nar')).sha256,
    await patternSha256(12 * 1024 * 1024 + 7, 'hdr'),
  );
  const shown = `${logger.text()} ${inspect(store, { depth: 10, showHidden: true })}`;
  assert.ok(!shown.includes(HEADERS['CF-Access-Client-Secret']));
  await store.close();
});

test("control: headers signed before the proxy strips them fail RGW's signature check", async () => {
  // A plain SDK client that adds the same headers before signing. If our store did that,
  // the test above would fail the same way.
  const signed = new S3Client({
    endpoint: proxy.url,
    region: env.region,
    forcePathStyle: true,
    credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    maxAttempts: 1,
  });
  signed.middlewareStack.add(
    (next) => async (args) => {
      const req = args.request as { headers: Record<string, string> };
      Object.assign(req.headers, HEADERS);
      return next(args);
    },
    { step: 'build', name: 'headersBeforeSigning' },
  );
  const before = proxy.records.length;
  await assert.rejects(
    signed.send(new PutObjectCommand({ Bucket: bucket, Key: 'h/signed', Body: 'x' })),
    (e: Error) => e.name === 'SignatureDoesNotMatch',
  );
  const rec = proxy.records.at(-1)!;
  assert.equal(proxy.records.length, before + 1);
  assert.equal(rec.accepted, true, 'the proxy let it through');
  assert.ok(rec.signedHeaders.includes('cf-access-client-id'));
  signed.destroy();
});

test('a header value with a line break is refused before any request, value not shown', () => {
  const value = 'secret\r\nX-Injected: 1';
  assert.throws(
    () =>
      createS3Store(
        storeOptions(bucket, {
          endpoint: proxy.url,
          extraHeaders: { 'CF-Access-Client-Secret': value },
        }),
      ),
    (e) => {
      assert.ok(isLoftError(e, 'STORAGE_INVALID_OPTIONS'));
      assert.match(e.message, /CF-Access-Client-Secret.*line break \(CR or LF/);
      assert.ok(!describeError(e).includes('secret\r'));
      return true;
    },
  );
});
