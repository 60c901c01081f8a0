/**
 * The S3 store against real Ceph RGW: small objects, listing, copy, delete, and the errors
 * people meet (wrong secret, missing bucket, unreachable endpoint, no credentials).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createS3Store } from '../../../src/storage/s3-store.js';
import { describeError, isLoftError } from '../../../src/util/errors.js';
import { MemoryLogger } from '../../../src/util/log.js';
import {
  createBucket,
  listKeysRaw,
  s3TestEnv,
  storeOptions,
  testS3Client,
} from '../../support/s3.js';
import { collect } from '../../support/iter.js';

const env = s3TestEnv();
const client = testS3Client(env);
let bucket: string;

before(async () => {
  bucket = await createBucket(client, 'basics');
});
after(() => client.destroy());

test('put, get and head round-trip small objects with their content types', async () => {
  const store = createS3Store(storeOptions(bucket));
  await store.check();
  await store.put('nix-cache-info', 'StoreDir: /nix/store\nWantMassQuery: 1\n', {
    contentType: 'text/x-nix-cache-info',
  });
  const bytes = Buffer.from([0, 1, 2, 255, 254]);
  await store.put('dir/binary key+with spaces', bytes);
  assert.equal(
    String(await store.get('nix-cache-info')),
    'StoreDir: /nix/store\nWantMassQuery: 1\n',
  );
  assert.deepEqual(await store.get('dir/binary key+with spaces'), bytes);
  assert.equal(await store.get('missing.narinfo'), undefined);
  const h = await store.head('nix-cache-info');
  assert.equal(h?.size, Buffer.byteLength('StoreDir: /nix/store\nWantMassQuery: 1\n'));
  assert.equal(h?.contentType, 'text/x-nix-cache-info');
  assert.ok(Math.abs(h!.lastModified.getTime() - Date.now()) < 120_000);
  assert.equal(await store.head('missing.narinfo'), undefined);
  // Checked independently of our store.
  const raw = await client.send(
    new HeadObjectCommand({ Bucket: bucket, Key: 'dir/binary key+with spaces' }),
  );
  assert.equal(raw.ContentLength, 5);
  await store.close();
});

test('copy: to a new key, and onto itself to refresh LastModified (metadata replaced)', async () => {
  const store = createS3Store(storeOptions(bucket));
  await store.put('c/src.narinfo', 'StorePath: x\n', { contentType: 'text/x-nix-narinfo' });
  const before = (await store.head('c/src.narinfo'))!;
  await store.copy('c/src.narinfo', 'c/dst.narinfo');
  assert.equal(String(await store.get('c/dst.narinfo')), 'StorePath: x\n');
  assert.equal((await store.head('c/dst.narinfo'))?.contentType, 'text/x-nix-narinfo');
  // LastModified has one-second resolution.
  await new Promise((r) => setTimeout(r, 1100));
  await store.copy('c/src.narinfo', 'c/src.narinfo');
  const refreshed = (await store.head('c/src.narinfo'))!;
  assert.ok(refreshed.lastModified > before.lastModified, 'LastModified moved forward');
  assert.equal(refreshed.contentType, 'text/x-nix-narinfo', 'content type kept on a refresh');
  await store.copy('c/src.narinfo', 'c/src.narinfo', { contentType: 'text/plain' });
  assert.equal((await store.head('c/src.narinfo'))?.contentType, 'text/plain');
  assert.equal(String(await store.get('c/src.narinfo')), 'StorePath: x\n');
  await assert.rejects(store.copy('c/missing', 'c/x'), (e) =>
    isLoftError(e, 'STORAGE_NO_SUCH_KEY'),
  );
  await store.close();
});

test('deleteMany removes keys in a batch; missing keys are fine', async () => {
  const store = createS3Store(storeOptions(bucket));
  const keys = Array.from({ length: 25 }, (_, i) => `del/${i}`);
  await Promise.all(keys.map((k) => store.put(k, k)));
  await store.deleteMany([...keys.slice(0, 20), 'del/never-existed', 'del/0']);
  assert.deepEqual((await listKeysRaw(client, bucket, 'del/')).sort(), keys.slice(20).sort());
  await store.deleteMany([]);
  await store.close();
});

test('list: keys with sizes and dates; top level only without walking nar/', async () => {
  const store = createS3Store(storeOptions(bucket));
  await store.put('l/a.narinfo', 'aa');
  await store.put('l/nar/x.nar.zst', 'xxx');
  const all = await collect(store.list('l/'));
  assert.deepEqual(all.map((o) => [o.key, o.size]).sort(), [
    ['l/a.narinfo', 2],
    ['l/nar/x.nar.zst', 3],
  ]);
  assert.ok(all.every((o) => o.lastModified instanceof Date));
  assert.deepEqual(
    (await collect(store.list('l/', { recursive: false }))).map((o) => o.key),
    ['l/a.narinfo'],
  );
  await store.close();
});

test('a wrong secret gives a clear 403 naming endpoint, bucket and region, never the secret', async () => {
  const wrongSecret = 'this-is-not-the-secret-0123456789';
  const logger = new MemoryLogger();
  const store = createS3Store(
    storeOptions(bucket, {
      credentials: { accessKeyId: env.accessKeyId, secretAccessKey: wrongSecret },
      logger,
    }),
  );
  for (const op of [
    () => store.put('x', 'y'),
    () => store.check(),
    () => store.get('nix-cache-info'),
  ]) {
    await assert.rejects(op(), (e) => {
      assert.ok(isLoftError(e, 'S3_ACCESS_DENIED'), String(e));
      assert.equal(e.kind, 'environment');
      assert.ok(e.message.includes(env.endpoint), e.message);
      assert.ok(e.message.includes(`"${bucket}"`));
      assert.ok(e.message.includes(env.region));
      assert.match(e.hint ?? '', /access key.*secret key.*region.*clock/);
      const everything = `${describeError(e)} ${inspect(e, { depth: 10, showHidden: true })} ${JSON.stringify(e)}`;
      assert.ok(!everything.includes(wrongSecret), 'secret not shown');
      assert.ok(!everything.includes(env.secretAccessKey));
      return true;
    });
  }
  assert.match(describeError(await store.put('x', 'y').catch((e) => e)), /SignatureDoesNotMatch/);
  assert.ok(!logger.text().includes(wrongSecret));
  await store.close();
});

test('a missing bucket is S3_NO_SUCH_BUCKET, from check() and from any request', async () => {
  const store = createS3Store(storeOptions(`${bucket}-missing`));
  await assert.rejects(
    store.check(),
    (e) => isLoftError(e, 'S3_NO_SUCH_BUCKET') && /create the bucket/.test(e.hint ?? ''),
  );
  await assert.rejects(store.put('x', 'y'), (e) => isLoftError(e, 'S3_NO_SUCH_BUCKET'));
  await assert.rejects(collect(store.list('')), (e) => isLoftError(e, 'S3_NO_SUCH_BUCKET'));
  await store.close();
});

test('an unreachable endpoint is S3_UNREACHABLE after the configured attempts', async () => {
  // A port nobody listens on: bind one, note it, close it.
  const { createServer } = await import('node:net');
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  const endpoint = `http://127.0.0.1:${port}`;
  const logger = new MemoryLogger();
  const store = createS3Store(storeOptions(bucket, { endpoint, maxAttempts: 3, logger }));
  await assert.rejects(store.head('k'), (e) => {
    assert.ok(isLoftError(e, 'S3_UNREACHABLE'), String(e));
    assert.ok(e.message.includes(endpoint));
    assert.match(e.message, /ECONNREFUSED.*\(after 3 attempts\)/);
    assert.match(e.hint ?? '', /s3\.endpoint/);
    return true;
  });
  assert.equal(logger.lines.filter((l) => l.msg.includes('retrying')).length, 2);
  await store.close();
});

test('credentials come from the standard chain: environment, or a profile in a shared file', async (t) => {
  const saved = { ...process.env };
  const dir = mkdtempSync(join(tmpdir(), 'loft-aws-'));
  t.after(() => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
    rmSync(dir, { recursive: true, force: true });
  });
  // Nothing in this process may find credentials anywhere else.
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
  process.env.AWS_CONFIG_FILE = join(dir, 'config');
  process.env.AWS_SHARED_CREDENTIALS_FILE = join(dir, 'credentials');
  delete process.env.AWS_PROFILE;
  writeFileSync(join(dir, 'config'), '');
  // Written before any client exists: the SDK caches what it read from these files.
  writeFileSync(
    join(dir, 'credentials'),
    `[loft-test]\naws_access_key_id = ${env.accessKeyId}\naws_secret_access_key = ${env.secretAccessKey}\n`,
  );
  const noCreds = { ...storeOptions(bucket), credentials: undefined };

  process.env.AWS_ACCESS_KEY_ID = env.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = env.secretAccessKey;
  const fromEnv = createS3Store(noCreds);
  await fromEnv.put('creds/env', 'ok');
  await fromEnv.close();
  delete process.env.AWS_ACCESS_KEY_ID;
  delete process.env.AWS_SECRET_ACCESS_KEY;

  const fromProfile = createS3Store({ ...noCreds, profile: 'loft-test' });
  await fromProfile.put('creds/profile', 'ok');
  await fromProfile.close();
  assert.deepEqual((await listKeysRaw(client, bucket, 'creds/')).sort(), [
    'creds/env',
    'creds/profile',
  ]);

  const none = createS3Store({ ...noCreds, profile: 'no-such-profile', maxAttempts: 1 });
  await assert.rejects(none.put('creds/none', 'x'), (e) => {
    assert.ok(isLoftError(e, 'S3_NO_CREDENTIALS'), String(e));
    assert.match(e.hint ?? '', /AWS_ACCESS_KEY_ID/);
    return true;
  });
  await none.close();
});

test('close() waits for requests in flight, then refuses new ones', async () => {
  const store = createS3Store(storeOptions(bucket));
  const puts = Array.from({ length: 10 }, (_, i) =>
    store.put(`close/${i}`, Buffer.alloc(200_000, i)),
  );
  await store.close();
  await Promise.all(puts);
  assert.equal((await listKeysRaw(client, bucket, 'close/')).length, 10);
  await assert.rejects(store.put('close/late', 'x'), (e) => isLoftError(e, 'STORAGE_CLOSED'));
  // A PutObject straight through the SDK proves the bucket itself is still fine.
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'close/direct', Body: 'x' }));
});
