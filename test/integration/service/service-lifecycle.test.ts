/**
 * Failures and stops in the middle of a large upload (a path with a 300 MB file):
 * - kill -9 while its multipart upload runs, restart: the path ends up uploaded, and a
 *   checker walking the bucket the whole time never sees a narinfo without its NAR or
 *   references;
 * - SIGTERM: the upload in flight finishes and is published, no multipart upload is left,
 *   exit 0;
 * - SIGTERM twice: the upload is aborted (no multipart upload left, nothing published),
 *   exit 130, and the path is still queued for the next start.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  HeadObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { nixBuild, nixRequisites } from '../../support/nix.js';
import { checkCacheIntegrity, makePublicCache } from '../../support/cache.js';
import { listKeysRaw, listMultipartUploadsRaw } from '../../support/s3.js';
import {
  ServiceProcess,
  hasNarInfo,
  runLoft,
  setupService,
  startChrootStore,
  until,
  type ChrootStore,
  type ServiceSetup,
} from './support.js';

let store: ChrootStore;
let big: string;
let top: string;
const setups: ServiceSetup[] = [];

before(async () => {
  store = await startChrootStore();
  const [t] = await nixBuild(`
    let b = mk "svc-big" "mkdir $out; head -c 300000000 /dev/urandom > $out/big";
    in mk "svc-big-top" "mkdir $out; echo \${b} > $out/ref"`);
  top = t!;
  big = (await nixRequisites([top])).find((p) => p.endsWith('-svc-big'))!;
  // In the shared store before any service starts: part of every baseline, queued by the hook.
  await store.add([top]);
});

after(async () => {
  await store?.stop();
  for (const s of setups) rmSync(s.dir, { recursive: true, force: true });
});

/** Free the RGW memory this test used (the harness's memstore is shared). */
async function emptyBucket(client: S3Client, bucket: string) {
  for (const u of await listMultipartUploadsRaw(client, bucket)) {
    await client.send(
      new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.key, UploadId: u.uploadId }),
    );
  }
  const keys = await listKeysRaw(client, bucket);
  if (keys.length > 0) {
    await client.send(
      new DeleteObjectsCommand({
        Bucket: bucket,
        Delete: { Objects: keys.map((Key) => ({ Key })) },
      }),
    );
  }
}

async function multipartStarted(client: S3Client, bucket: string) {
  await until(
    async () => (await listMultipartUploadsRaw(client, bucket)).length > 0,
    'the multipart upload of the big NAR to start',
    120_000,
    50,
  );
}

/** Queue `top` through the hook (the path is already in the store's baseline). */
async function hook(setup: ServiceSetup) {
  const r = await runLoft(['-c', setup.toml, '--post-build-hook'], {
    ...setup.env,
    OUT_PATHS: top,
  });
  assert.equal(r.code, 0, r.stderr);
}

test('kill -9 mid-upload, restart: uploaded, and the cache is never broken meanwhile', async () => {
  const cache = await makePublicCache('svc-crash');
  // This test needs the paths to arrive while the service watches: a store of its own.
  const own = await startChrootStore();
  const s = setupService(cache, own);
  setups.push(s);
  let svc = new ServiceProcess(s);
  let done = false;
  const problems: string[] = [];
  const seen: number[] = [];
  const checker = (async () => {
    while (!done) {
      const r = await checkCacheIntegrity(cache.client, cache.bucket);
      problems.push(...r.problems);
      seen.push(r.narInfos);
    }
  })();
  try {
    await svc.waitEvent('ready');
    await own.add([top]);
    await multipartStarted(cache.client, cache.bucket);
    await svc.kill9();
    assert.equal(await hasNarInfo(cache.client, cache.bucket, big), false, 'killed mid-upload');

    svc = new ServiceProcess(s);
    await svc.waitEvent('claims-released');
    await svc.waitEvent('uploaded', (l) => l.path === top, 180_000);
    assert.equal(await svc.stop(), 0);
  } finally {
    done = true;
    await checker;
    if (svc.running) await svc.kill9();
    await own.stop();
  }
  assert.deepEqual(problems, []);
  assert.ok(seen.length > 2, `the checker ran throughout (${seen.length} walks)`);
  const final = await checkCacheIntegrity(cache.client, cache.bucket);
  assert.deepEqual(final.problems, []);
  assert.equal(final.narInfos, 2);
  // The killed process could not abort its multipart upload; pruning removes such leftovers
  // after a day. The restarted service left none of its own.
  assert.ok((await listMultipartUploadsRaw(cache.client, cache.bucket)).length <= 1);
  await emptyBucket(cache.client, cache.bucket);
});

test('SIGTERM during an upload: it finishes and is published, nothing is left, exit 0', async () => {
  const cache = await makePublicCache('svc-term');
  const setup = setupService(cache, store);
  setups.push(setup);
  const svc = new ServiceProcess(setup);
  try {
    await svc.waitEvent('ready'); // baseline: the big closure is already in the store
    await hook(setup);
    await multipartStarted(cache.client, cache.bucket);
    svc.signal('SIGTERM');
    const { code } = await svc.exited;
    assert.equal(code, 0);
    assert.ok(await hasNarInfo(cache.client, cache.bucket, big), 'the in-flight path finished');
    assert.ok(await hasNarInfo(cache.client, cache.bucket, top));
    assert.deepEqual(await listMultipartUploadsRaw(cache.client, cache.bucket), []);
    assert.deepEqual((await checkCacheIntegrity(cache.client, cache.bucket)).problems, []);
    assert.ok(svc.events('stopping').length === 1 && svc.events('stopped').length === 1);
  } finally {
    if (svc.running) await svc.kill9();
  }
  await emptyBucket(cache.client, cache.bucket);
});

test('a second SIGTERM aborts: no multipart upload left, nothing published, exit 130; the path stays queued', async () => {
  const cache = await makePublicCache('svc-abort');
  const setup = setupService(cache, store);
  setups.push(setup);
  let svc = new ServiceProcess(setup);
  try {
    await svc.waitEvent('ready');
    await hook(setup);
    await multipartStarted(cache.client, cache.bucket);
    svc.signal('SIGTERM');
    await new Promise((r) => setTimeout(r, 100));
    svc.signal('SIGTERM');
    const { code } = await svc.exited;
    assert.equal(code, 130);
    assert.deepEqual(await listMultipartUploadsRaw(cache.client, cache.bucket), []);
    assert.equal(await hasNarInfo(cache.client, cache.bucket, big), false);
    assert.equal(await hasNarInfo(cache.client, cache.bucket, top), false);
    // The small path's NAR may be stored (it waits for its dependency's narinfo); the big
    // one's aborted upload must have left nothing.
    for (const key of (await listKeysRaw(cache.client, cache.bucket)).filter((k) =>
      k.startsWith('nar/'),
    )) {
      const h = await cache.client.send(new HeadObjectCommand({ Bucket: cache.bucket, Key: key }));
      assert.ok((h.ContentLength ?? 0) < 1_000_000, `${key} is not the aborted big NAR`);
    }

    const status = await runLoft(['-c', setup.toml, '--status', '--log-format', 'json'], setup.env);
    assert.equal(status.code, 0, status.stderr);
    const report = JSON.parse(status.stdout) as { queue: { pending: number } };
    assert.equal(report.queue.pending, 1, 'still queued after the abort');

    svc = new ServiceProcess(setup);
    await svc.waitEvent('uploaded', (l) => l.path === top, 180_000);
    assert.equal(await svc.stop(), 0);
    assert.deepEqual((await checkCacheIntegrity(cache.client, cache.bucket)).problems, []);
  } finally {
    if (svc.running) await svc.kill9();
  }
  await emptyBucket(cache.client, cache.bucket);
});
