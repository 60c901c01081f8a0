/** Eager option checks of the S3 store: made without any network traffic. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { checkExtraHeaders } from '../../../src/storage/s3-client.js';
import { createS3Store, type S3StoreOptions } from '../../../src/storage/s3-store.js';
import { isLoftError, describeError } from '../../../src/util/errors.js';
import { checkBucketName, checkEndpoint, checkRegion } from '../../../src/config/rules.js';

const SECRET = 'sEcReT-kEy-0123456789';
const HEADER_SECRET = 'cf-secret-value-42';
const base: S3StoreOptions = {
  bucket: 'cache',
  endpoint: 'http://127.0.0.1:9',
  credentials: { accessKeyId: 'AKID', secretAccessKey: SECRET },
};

function optionsError(f: () => unknown, pattern: RegExp) {
  assert.throws(f, (e) => {
    assert.ok(isLoftError(e, 'STORAGE_INVALID_OPTIONS'), String(e));
    assert.equal(e.kind, 'config');
    assert.match(e.message, pattern);
    return true;
  });
}

test('extra header values with CR, LF or NUL are refused without echoing the value', () => {
  for (const value of [`a\r\nX-Evil: 1`, 'a\nb', 'a\0b']) {
    assert.throws(
      () => checkExtraHeaders({ 'CF-Access-Client-Secret': value }),
      (e) => {
        assert.ok(isLoftError(e, 'STORAGE_INVALID_OPTIONS'));
        assert.match(e.message, /CF-Access-Client-Secret/);
        assert.ok(!describeError(e).includes(value), 'value not shown');
        return true;
      },
    );
  }
});

test('extra header names must be tokens and must not replace signed headers', () => {
  optionsError(() => checkExtraHeaders({ 'Bad Name': 'x' }), /not a valid HTTP header name/);
  optionsError(() => checkExtraHeaders({ Authorization: 'x' }), /cannot be an extra header/);
  optionsError(() => checkExtraHeaders({ 'X-Amz-Date': 'x' }), /cannot be an extra header/);
  optionsError(() => checkExtraHeaders({ host: 'x' }), /cannot be an extra header/);
  optionsError(
    () => checkExtraHeaders({ 'cf-access-client-id': 'a', 'CF-Access-Client-Id': 'b' }),
    /twice/,
  );
  assert.deepEqual(checkExtraHeaders({ 'CF-Access-Client-Id': 'id' }), [
    ['CF-Access-Client-Id', 'id'],
  ]);
  assert.deepEqual(checkExtraHeaders(undefined), []);
});

test('the store refuses exactly the buckets, endpoints and regions loft.toml refuses', () => {
  for (const bucket of ['Cache', 'a_b', 'ab', 'x'.repeat(64), '-cache', '10.0.0.1']) {
    assert.notEqual(checkBucketName(bucket), undefined, bucket);
    optionsError(() => createS3Store({ ...base, bucket }), /bucket name/);
  }
  for (const bucket of ['abc', 'nix-cache', 'my.cache.1']) {
    assert.equal(checkBucketName(bucket), undefined, bucket);
    assert.doesNotThrow(() => createS3Store({ ...base, bucket }), bucket);
  }
  for (const region of ['', 'a b', 'eu/west']) {
    assert.notEqual(checkRegion(region), undefined, region);
    optionsError(() => createS3Store({ ...base, region }), /region/);
  }
  for (const region of ['us-east-1', 'garage', 'auto', 'zone_group.1']) {
    assert.equal(checkRegion(region), undefined, region);
    assert.doesNotThrow(() => createS3Store({ ...base, region }), region);
  }
  for (const endpoint of ['http://', 'ftp://host', 'http://host/?x=1', 'http://u:p@host']) {
    assert.equal(checkEndpoint(endpoint).ok, false, endpoint);
    optionsError(() => createS3Store({ ...base, endpoint }), /endpoint/);
  }
});

test('store options are checked when the store is made', () => {
  optionsError(() => createS3Store({ ...base, bucket: '' }), /bucket name/);
  optionsError(
    () => createS3Store({ ...base, endpoint: 'garage:3900' }),
    /http:\/\/ or https:\/\//,
  );
  optionsError(() => createS3Store({ ...base, endpoint: 'not a url' }), /not a URL/);
  optionsError(
    () => createS3Store({ ...base, endpoint: `http://AKID:${SECRET}@host/` }),
    /credentials in the URL are not allowed/,
  );
  optionsError(() => createS3Store({ ...base, maxAttempts: 0 }), /maxAttempts/);
  optionsError(() => createS3Store({ ...base, partSize: 1024 }), /partSize/);
  optionsError(() => createS3Store({ ...base, partConcurrency: 0 }), /partConcurrency/);
  optionsError(
    () => createS3Store({ ...base, credentials: { accessKeyId: 'AKID', secretAccessKey: '' } }),
    /secret access key/,
  );
  // The endpoint-with-password error does not show the password.
  try {
    createS3Store({ ...base, endpoint: `http://AKID:${SECRET}@host/` });
  } catch (e) {
    assert.ok(!describeError(e).includes(SECRET));
  }
});

test('a store shows its bucket and endpoint, never its secrets', async () => {
  const store = createS3Store({
    ...base,
    endpoint: 'http://Example.internal:3900/',
    region: 'garage',
    extraHeaders: { 'CF-Access-Client-Secret': HEADER_SECRET },
  });
  assert.equal(store.id, 's3://cache?endpoint=http://example.internal:3900');
  assert.match(
    store.description,
    /bucket "cache" at http:\/\/example\.internal:3900 \(region garage\)/,
  );
  const shown = inspect(store, { depth: 10, showHidden: true });
  assert.ok(!shown.includes(SECRET), 'secret key not in inspect output');
  assert.ok(!shown.includes(HEADER_SECRET), 'header value not in inspect output');
  assert.ok(!JSON.stringify(store).includes(SECRET));
  await store.close();
  await store.close();
  await assert.rejects(store.head('x'), (e) => isLoftError(e, 'STORAGE_CLOSED'));
});

test('without an endpoint the store names AWS S3 and its region (identity and description)', async () => {
  const store = createS3Store({
    bucket: 'cache',
    region: 'eu-west-1',
    credentials: base.credentials,
  });
  assert.equal(store.id, 's3://cache?region=eu-west-1');
  assert.match(store.description, /at AWS S3 \(region eu-west-1\)/);
  await store.close();
});
