/**
 * `loft --doctor` through the real binary against RGW and the real nix-daemon: every check
 * passes on a working set-up (and leaves no scratch object behind), and each broken part
 * (credentials, bucket, endpoint, an auth proxy's header) fails its check with a hint; a
 * second RGW run with Ceph's default tcp_nodelay=0 gets the warning about small answers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { makePublicCache } from '../../support/cache.js';
import { listKeysRaw, s3TestEnv, startFaultProxy, startHeaderProxy } from '../../support/s3.js';
import { rgwScript, startRgw } from '../../support/fixtures.js';
import { runLoft, setupService } from '../service/support.js';

const BUCKET_CHECK = 'bucket (credentials, region, endpoint)';

function line(stdout: string, status: string, name: string): string {
  const l = stdout.split('\n').find((x) => x.startsWith(status) && x.includes(name));
  assert.ok(l, `no ${status} line for ${name} in:\n${stdout}`);
  return l;
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

test('--doctor passes every check against RGW and leaves no scratch object', async () => {
  const cache = await makePublicCache('doctor-ok');
  const setup = setupService(cache, undefined);
  const r = await runLoft(['-c', setup.toml, '--doctor'], setup.env);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  for (const name of [
    'configuration',
    'signing key',
    'nix-daemon',
    BUCKET_CHECK,
    'clock skew',
    'PUT, GET, HEAD of a scratch object',
    'small answers on a reused connection',
    'multipart upload',
    'server-side copy',
    'batch delete',
    'extra headers',
    'nix-cache-info',
  ]) {
    line(r.stdout, 'OK', name);
  }
  assert.match(line(r.stdout, 'OK', 'nix-daemon'), /protocol 1\.\d+, Nix 2\.\d+/);
  assert.match(
    line(r.stdout, 'OK', 'small answers'),
    /GET \d+ ms, HEAD \d+ ms \(medians of 5, one connection\)/,
  );
  assert.match(line(r.stdout, 'OK', 'multipart upload'), /2 parts, 8388609 bytes/);
  assert.match(line(r.stdout, 'OK', 'batch delete'), /batch DeleteObjects works/);
  assert.match(r.stdout, /everything Loft needs works/);
  assert.deepEqual(await listKeysRaw(cache.client, cache.bucket), []);
});

test('--doctor names the failing check with a hint: wrong credentials, no bucket, no endpoint', async () => {
  const cache = await makePublicCache('doctor-bad');
  const setup = setupService(cache, undefined);

  const creds = await runLoft(['-c', setup.toml, '--doctor'], {
    ...setup.env,
    AWS_SECRET_ACCESS_KEY: 'not-the-secret',
  });
  assert.equal(creds.code, 1, creds.stdout + creds.stderr);
  line(creds.stdout, 'FAIL', BUCKET_CHECK);
  assert.match(creds.stdout, /hint: check the access key, the secret key and the region/);
  assert.match(line(creds.stdout, 'SKIP', 'multipart upload'), /needs "PUT, GET, HEAD/);
  assert.match(creds.stdout, /check\(s\) failed: bucket \(credentials, region, endpoint\)/);
  assert.ok(!creds.stdout.includes('not-the-secret'));

  const gone = setupService(cache, undefined, {}, { bucket: '"loft-doctor-no-such-bucket"' });
  const nob = await runLoft(['-c', gone.toml, '--doctor'], gone.env);
  assert.equal(nob.code, 1);
  assert.match(line(nob.stdout, 'FAIL', BUCKET_CHECK), /does not exist/);
  assert.match(nob.stdout, /hint: create the bucket/);

  const port = await closedPort();
  const away = setupService(cache, undefined, {}, { endpoint: `"http://127.0.0.1:${port}"` });
  const unr = await runLoft(['-c', away.toml, '--doctor'], away.env);
  assert.equal(unr.code, 1);
  assert.match(line(unr.stdout, 'FAIL', BUCKET_CHECK), /cannot reach S3/);
  assert.match(unr.stdout, /hint: check s3.endpoint/);
  // The daemon does not depend on S3: still checked.
  line(unr.stdout, 'OK', 'nix-daemon');
});

test('--doctor behind an auth proxy: a missing header fails with the extra-headers hint; with it, all pass', async () => {
  const cache = await makePublicCache('doctor-proxy');
  const proxy = await startHeaderProxy(s3TestEnv().endpoint, { 'x-proxy-token': 'sesame-42' });
  try {
    const setup = setupService(cache, undefined, {}, { endpoint: JSON.stringify(proxy.url) });
    const without = await runLoft(['-c', setup.toml, '--doctor'], setup.env);
    assert.equal(without.code, 1);
    assert.match(line(without.stdout, 'FAIL', BUCKET_CHECK), /403/);
    assert.match(without.stdout, /extra headers \(\[s3\.extra_headers\]\)/);
    line(without.stdout, 'OK', 'extra headers');

    const withHeader = await runLoft(['-c', setup.toml, '--doctor'], {
      ...setup.env,
      LOFT_EXTRA_HEADER_X_PROXY_TOKEN: 'sesame-42',
    });
    assert.equal(withHeader.code, 0, withHeader.stdout + withHeader.stderr);
    assert.match(line(withHeader.stdout, 'OK', 'extra headers'), /x-proxy-token \(names only\)/);
    assert.ok(!withHeader.stdout.includes('sesame-42'));
    assert.ok(
      proxy.records.some((r) => r.accepted && r.method === 'POST'),
      'multipart went through it',
    );
  } finally {
    await proxy.close();
  }
});

test('--doctor warns (and passes) when the server refuses batch delete, which Loft works around', async () => {
  const cache = await makePublicCache('doctor-nobatch');
  const proxy = await startFaultProxy(s3TestEnv().endpoint, [
    {
      name: 'no-batch-delete',
      match: (r) => r.method === 'POST' && r.query.has('delete'),
      action: { kind: 'status', status: 501, code: 'NotImplemented' },
      times: 100,
    },
  ]);
  try {
    const setup = setupService(cache, undefined, {}, { endpoint: JSON.stringify(proxy.url) });
    const r = await runLoft(['-c', setup.toml, '--doctor'], setup.env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(line(r.stdout, 'WARN', 'batch delete'), /refused batch DeleteObjects/);
    assert.ok(proxy.log.some((l) => l.fault === 'no-batch-delete'));
    assert.deepEqual(await listKeysRaw(cache.client, cache.bucket), [], 'deleted one by one');
  } finally {
    await proxy.close();
  }
});

test("--doctor warns (and passes) against an RGW run with Ceph's default tcp_nodelay=0, whose small GETs wait for delayed ACKs", async () => {
  const cache = await makePublicCache('doctor-nagle');
  const rgw = await startRgw({ RGW_TCP_NODELAY: '0' });
  try {
    execFileSync(rgwScript, ['bucket', rgw.dir, cache.bucket], { stdio: 'ignore' });
    const setup = setupService(
      cache,
      undefined,
      {},
      { endpoint: JSON.stringify(rgw.env.LOFT_TEST_S3_ENDPOINT) },
    );
    const r = await runLoft(['-c', setup.toml, '--doctor'], setup.env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const warn = line(r.stdout, 'WARN', 'small answers on a reused connection');
    const [, get, head] = /GET (\d+) ms, HEAD (\d+) ms/.exec(warn) ?? [];
    assert.ok(Number(get) - Number(head) > 25, warn);
    assert.match(warn, /add tcp_nodelay=1 to "rgw frontends"/);
    line(r.stdout, 'OK', 'multipart upload');
  } finally {
    await rgw.stop();
  }
});
