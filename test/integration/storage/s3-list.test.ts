/** Listing past one page (RGW pages at 1,000 keys), also when a page request fails once. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createS3Store } from '../../../src/storage/s3-store.js';
import {
  createBucket,
  s3TestEnv,
  startFaultProxy,
  storeOptions,
  testS3Client,
} from '../../support/s3.js';
import { collect } from '../../support/iter.js';

const env = s3TestEnv();
const client = testS3Client(env);
const COUNT = 1_050;
let bucket: string;
const hashPart = (i: number) => `${String(i).padStart(4, '0')}${'a'.repeat(28)}`;

before(async () => {
  bucket = await createBucket(client, 'list');
  const store = createS3Store(storeOptions(bucket));
  const keys = Array.from({ length: COUNT }, (_, i) => `${hashPart(i)}.narinfo`);
  keys.push('nix-cache-info', 'nar/one.nar.zst', 'nar/two.nar.zst');
  for (let i = 0; i < keys.length; i += 50) {
    await Promise.all(keys.slice(i, i + 50).map((k) => store.put(k, k)));
  }
  await store.close();
});
after(() => client.destroy());

test('more than 1,000 keys are listed, each once, with their sizes', async () => {
  const store = createS3Store(storeOptions(bucket));
  const all = await collect(store.list(''));
  assert.equal(all.length, COUNT + 3);
  assert.equal(new Set(all.map((o) => o.key)).size, COUNT + 3);
  for (const o of all) assert.equal(o.size, Buffer.byteLength(o.key), o.key);
  await store.close();
});

test('narinfos are listed at the top level without walking nar/', async () => {
  const store = createS3Store(storeOptions(bucket));
  const top = await collect(store.list('', { recursive: false }));
  assert.equal(top.length, COUNT + 1);
  assert.ok(!top.some((o) => o.key.startsWith('nar/')));
  assert.deepEqual((await collect(store.list('nar/'))).map((o) => o.key).sort(), [
    'nar/one.nar.zst',
    'nar/two.nar.zst',
  ]);
  assert.equal((await collect(store.list('001'))).length, 10);
  await store.close();
});

test('a failed page request is retried and the listing resumes where it was', async () => {
  const proxy = await startFaultProxy(env.endpoint, [
    {
      name: 'second page fails',
      match: (r) => r.method === 'GET' && r.query.has('continuation-token'),
      action: { kind: 'status', status: 500, code: 'InternalError' },
      times: 1,
    },
    {
      name: 'second page cut short',
      match: (r) => r.method === 'GET' && r.query.has('continuation-token'),
      action: { kind: 'truncate-response', afterBytes: 5000 },
      times: 1,
    },
  ]);
  try {
    const store = createS3Store(storeOptions(bucket, { endpoint: proxy.url }));
    const all = await collect(store.list(''));
    assert.equal(all.length, COUNT + 3);
    assert.equal(new Set(all.map((o) => o.key)).size, COUNT + 3);
    assert.deepEqual(
      proxy.log.filter((l) => l.fault).map((l) => l.fault),
      ['second page fails', 'second page cut short'],
    );
    await store.close();
  } finally {
    await proxy.close();
  }
});
