/**
 * Pruning against a real Ceph RGW bucket filled by the real push pipeline from real Nix
 * builds, with an injected clock; each scenario ends with the integrity walk (every
 * remaining narinfo's NAR and references exist), and the retention scenario with real Nix
 * substituting the survivor with signatures required.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { nixBuild, nixRequisites, salt } from '../../support/nix.js';
import {
  checkCacheIntegrity,
  makePublicCache,
  substituteFresh,
  type TestCache,
} from '../../support/cache.js';
import { listMultipartUploadsRaw } from '../../support/s3.js';
import { openPushContext } from '../../support/push.js';
import { push } from '../../../src/upload/push.js';
import { prune, type PruneResult } from '../../../src/prune/prune.js';
import { DAY_MS, policyFromSettings, type PrunePolicy } from '../../../src/prune/policy.js';
import { narInfoDeletions } from '../../../src/prune/plan.js';
import { PruneIncompleteError } from '../../../src/prune/errors.js';
import { encodeNix32 } from '../../../src/nix/nixbase32.js';
import { MemoryLogger } from '../../../src/util/log.js';
import type { BlobStore } from '../../../src/storage/port.js';
import { wrapStore } from '../../support/blobs.js';
import { hashPartOfPath, inventory, lastModifiedOf, sleepMs, withStore } from './support.js';
import { PRUNE_MARK_KEY } from '../../../src/storage/prune-mark.js';

async function pushAll(cache: TestCache, roots: string[]): Promise<void> {
  const ctx = await openPushContext({ bucket: cache.bucket, key: cache.key });
  try {
    const r = await push(ctx, roots, {
      uploadThreads: 2,
      skipSignedByKeys: [],
      writeListing: true,
    });
    assert.equal(r.complete, true, JSON.stringify(r.failed));
  } finally {
    await ctx.close();
  }
}

async function assertIntact(cache: TestCache): Promise<number> {
  const report = await checkCacheIntegrity(cache.client, cache.bucket);
  assert.deepEqual(report.problems, [], 'every remaining narinfo has its NAR and references');
  return report.narInfos;
}

const policy = (retentionDays: number, over: Partial<PrunePolicy> = {}): PrunePolicy => ({
  ...policyFromSettings({ retentionDays, maxSizeBytes: undefined, targetPercentage: 80 }),
  ...over,
});

const narInfo = (path: string) => `${hashPartOfPath(path)}.narinfo`;
const listing = (path: string) => `${hashPartOfPath(path)}.ls`;

test('an old closure goes; a new one sharing its dependencies stays whole and substitutes', async () => {
  const cache = await makePublicCache('prune-age');
  const [oldTop, newTop] = await nixBuild(`
    let
      shared = mk "prune-shared" "mkdir $out; echo shared > $out/data";
      oldOnly = mk "prune-old-only" "mkdir $out; echo old > $out/data";
    in [
      (mk "prune-old-top" "echo \${shared} \${oldOnly} > $out")
      (mk "prune-new-top" "echo \${shared} > $out")
    ]`);
  const oldClosure = await nixRequisites([oldTop!]);
  const newClosure = await nixRequisites([newTop!]);
  const oldOnly = oldClosure.filter((p) => !newClosure.includes(p));
  assert.equal(oldOnly.length, 2, 'old-top and old-only');
  assert.equal(newClosure.length, 2, 'new-top and shared');

  await pushAll(cache, [oldTop!]);
  await sleepMs(2100); // LastModified has one-second resolution
  await pushAll(cache, [newTop!]);
  const before = await inventory(cache.client, cache.bucket);
  assert.equal(before.narInfos.length, 4);

  // The clock: one day after the new closure's push, with a one-day retention.
  const newTime = await lastModifiedOf(cache.client, cache.bucket, narInfo(newTop!));
  const sharedTime = await lastModifiedOf(
    cache.client,
    cache.bucket,
    narInfo(newClosure.find((p) => p !== newTop)!),
  );
  assert.ok(sharedTime < newTime, 'the shared dependency is older than the new root');
  const now = new Date(newTime.getTime() + DAY_MS);

  const forgotten: string[] = [];
  const logger = new MemoryLogger();
  const deleteCalls: string[][] = [];
  await withStore(cache, async (inner) => {
    const blobs = wrapStore(inner, {
      deleteMany: (keys) => {
        // The prune's own intent (loft/prune-intents/) is deleted at the end: not counted.
        if (!keys.every((k) => k.startsWith('loft/'))) deleteCalls.push([...keys]);
        return inner.deleteMany(keys);
      },
    });
    // A dry run shows the plan and deletes nothing.
    const dry = await prune({ blobs, logger, policy: policy(1) }, { dryRun: true, now });
    assert.equal(dry.dryRun, true);
    assert.equal(dry.plan!.deleting.expired.count, 2);
    assert.equal(dry.plan!.deleting.listings.count, 2);
    assert.equal(dry.plan!.deleting.releasedNars.count, 2);
    assert.equal(dry.plan!.kept.narInfos, 2);
    assert.deepEqual((await inventory(cache.client, cache.bucket)).keys, before.keys);

    const r = await prune(
      { blobs, logger, policy: policy(1), forget: (hps) => forgotten.push(...hps) },
      { now },
    );
    assert.equal(r.deleted.narInfos.count, 2);
    assert.equal(r.deleted.listings.count, 2);
    assert.equal(r.deleted.releasedNars.count, 2);
    assert.equal(r.interrupted, false);
  });
  // Referrers first: old-top (with its listing) went in an earlier request than old-only,
  // and the NARs only after both.
  const [oldOnlyDep] = oldOnly.filter((p) => p !== oldTop);
  assert.deepEqual(deleteCalls.slice(0, 2), [
    [narInfo(oldTop!), listing(oldTop!)],
    [narInfo(oldOnlyDep!), listing(oldOnlyDep!)],
  ]);
  assert.equal(deleteCalls.length, 3);
  assert.ok(deleteCalls[2]!.every((k) => k.startsWith('nar/')));
  assert.equal(logger.lines.filter((l) => /deleted \d+\/2 narinfos/.test(l.msg)).length, 2);

  const after = await inventory(cache.client, cache.bucket);
  for (const p of oldOnly) {
    assert.ok(!after.keys.has(narInfo(p)), `${p} pruned`);
    assert.ok(!after.keys.has(listing(p)), `${p} listing pruned`);
  }
  for (const p of newClosure) assert.ok(after.keys.has(narInfo(p)), `${p} kept`);
  assert.equal(after.nars.length, 2);
  assert.ok(after.keys.has('nix-cache-info'));
  assert.deepEqual(forgotten.sort(), oldOnly.map(hashPartOfPath).sort());
  assert.equal(await assertIntact(cache), 2);
  await substituteFresh(cache.url, cache.publicKey, [newTop!]);

  // A second prune at the same clock has nothing left to do.
  await withStore(cache, async (blobs) => {
    const again = await prune({ blobs, logger, policy: policy(1) }, { now });
    assert.equal(narInfoDeletions(again.plan!).length, 0);
    assert.equal(again.plan!.releasedNars.length + again.plan!.orphanNars.length, 0);
  });
});

test('the size policy evicts the least recently pushed closure whole and ends under the target', async () => {
  const cache = await makePublicCache('prune-size');
  const s = salt();
  // Three closures with private dependencies of 200 kB of random bytes (zstd cannot shrink
  // them) over one small shared dependency.
  const [a, b, c] = await nixBuild(
    `
    let
      shared = mk "size-shared" "mkdir $out; echo shared > $out/data";
      dep = n: mk "size-dep-\${n}" "mkdir $out; head -c 200000 /dev/urandom > $out/blob";
      top = n: mk "size-top-\${n}" "echo \${shared} \${dep n} > $out";
    in [ (top "a") (top "b") (top "c") ]`,
    s,
  );
  await pushAll(cache, [a!]);
  await sleepMs(1100);
  await pushAll(cache, [b!]);
  await sleepMs(1100);
  await pushAll(cache, [c!]);
  const closures = await Promise.all([a!, b!, c!].map((r) => nixRequisites([r])));
  const before = await inventory(cache.client, cache.bucket);
  assert.equal(before.narInfos.length, 7);

  // Bytes of what B and C need (narinfos, listings, NARs), from the listing.
  const keep = new Set([...closures[1]!, ...closures[2]!]);
  const info = await withStore(cache, async (blobs) => {
    const sizes = new Map<string, number>();
    for await (const o of blobs.list('')) sizes.set(o.key, o.size);
    let need = 0;
    for (const p of keep) {
      need += sizes.get(narInfo(p))! + (sizes.get(listing(p)) ?? 0);
      const text = (await blobs.get(narInfo(p)))!.toString();
      need += sizes.get(/^URL: (.*)$/m.exec(text)![1]!)!;
    }
    return { need };
  });
  // Budget: the target (80 %) fits B and C with a little room, but not A as well.
  const maxSizeBytes = Math.ceil((info.need + 1000) / 0.8);
  assert.ok(before.bytes > maxSizeBytes, 'the cache is over budget');
  assert.ok(before.bytes - info.need > 150_000, "A's private part is big");

  const r = await withStore(cache, (blobs) =>
    prune(
      { blobs, logger: new MemoryLogger(), policy: policy(30, { maxSizeBytes }) },
      // 20 days on: within the 30-day retention, past the size policy's 16-day protection.
      { now: new Date(Date.now() + 20 * DAY_MS) },
    ),
  );
  assert.equal(r.plan!.size?.triggered, true);
  assert.equal(r.plan!.deleting.expired.count, 0, 'nothing is past retention');
  assert.equal(r.plan!.deleting.sizeEvicted.count, 2, "A's root and private dependency");
  const after = await inventory(cache.client, cache.bucket);
  assert.ok(after.bytes <= r.plan!.size!.targetBytes, `${after.bytes} <= target`);
  assert.equal(after.bytes, r.plan!.bytesAfter, 'the plan counted what remains');
  for (const p of keep) assert.ok(after.keys.has(narInfo(p)), `${p} kept`);
  for (const p of closures[0]!.filter((p) => !keep.has(p))) {
    assert.ok(!after.keys.has(narInfo(p)), `${p} evicted`);
  }
  assert.equal(await assertIntact(cache), 5);
  await substituteFresh(cache.url, cache.publicKey, [b!, c!]);
});

test('orphan NARs and stale multipart uploads go after their grace; young ones and unknown keys stay', async () => {
  const cache = await makePublicCache('prune-orphans');
  const [top] = await nixBuild(`mk "orphans-live" "echo live > $out"`);
  await pushAll(cache, [top!]);
  const put = (key: string, body: string | Buffer) =>
    cache.client.send(new PutObjectCommand({ Bucket: cache.bucket, Key: key, Body: body }));
  const startUpload = async (key: string) => {
    const r = await cache.client.send(
      new CreateMultipartUploadCommand({ Bucket: cache.bucket, Key: key }),
    );
    await cache.client.send(
      new UploadPartCommand({
        Bucket: cache.bucket,
        Key: key,
        UploadId: r.UploadId,
        PartNumber: 1,
        Body: randomBytes(1000),
      }),
    );
    return r.UploadId!;
  };
  const narKey = () => `nar/${encodeNix32(randomBytes(32))}.nar.zst`;
  const hashPart = () => encodeNix32(randomBytes(20));

  const oldNar = narKey();
  const oldListing = `${hashPart()}.ls`;
  await put(oldNar, randomBytes(3000));
  await put(oldListing, '{"version":1}');
  const staleUpload = await startUpload(narKey());
  await sleepMs(3100);
  const youngNar = narKey();
  const youngListing = `${hashPart()}.ls`;
  await put(youngNar, randomBytes(2000));
  await put(youngListing, '{"version":1}');
  const youngKey = narKey();
  const youngUpload = await startUpload(youngKey);
  const unknown = ['README.txt', 'log/abcd-foo.drv', 'nar/notes.txt'];
  for (const k of unknown) await put(k, 'keep me');

  // The clock: just under a day after the young orphan was written (grace: one day).
  const youngTime = await lastModifiedOf(cache.client, cache.bucket, youngNar);
  const now = new Date(youngTime.getTime() + DAY_MS - 1000);
  try {
    const r = await withStore(cache, (blobs) =>
      prune({ blobs, logger: new MemoryLogger(), policy: policy(30) }, { now }),
    );
    assert.equal(r.deleted.orphanNars.count, 1);
    assert.equal(r.deleted.orphanListings.count, 1);
    assert.equal(r.deleted.staleUploads, 1);
    assert.equal(r.deleted.narInfos.count, 0);
    const after = await inventory(cache.client, cache.bucket);
    assert.ok(!after.keys.has(oldNar), 'old orphan NAR removed');
    assert.ok(!after.keys.has(oldListing), 'old orphan listing removed');
    assert.ok(after.keys.has(youngNar), 'young orphan NAR kept (may be an upload in progress)');
    assert.ok(after.keys.has(youngListing), 'young orphan listing kept');
    for (const k of ['nix-cache-info', ...unknown]) assert.ok(after.keys.has(k), `${k} untouched`);
    assert.ok(after.keys.has(narInfo(top!)));
    const uploads = await listMultipartUploadsRaw(cache.client, cache.bucket);
    assert.deepEqual(
      uploads.map((u) => u.uploadId),
      [youngUpload],
      'the stale upload is aborted, the young one left running',
    );
    assert.notEqual(staleUpload, youngUpload);
    assert.equal(await assertIntact(cache), 1);
  } finally {
    await cache.client.send(
      new AbortMultipartUploadCommand({
        Bucket: cache.bucket,
        Key: youngKey,
        UploadId: youngUpload,
      }),
    );
  }
});

test('a prune that fails after some deletions leaves a valid cache, and the next run finishes', async () => {
  const cache = await makePublicCache('prune-fail');
  // A chain of four over a fan of three: several layers, several batches.
  const [top] = await nixBuild(`
    let
      leaves = map (n: mk "fail-leaf-\${n}" "echo \${n} > $out") [ "1" "2" "3" ];
      c3 = mk "fail-c3" "echo \${toString leaves} > $out";
      c2 = mk "fail-c2" "echo \${c3} > $out";
      c1 = mk "fail-c1" "echo \${c2} > $out";
    in mk "fail-top" "echo \${c1} > $out"`);
  const closure = await nixRequisites([top!]);
  assert.equal(closure.length, 7);
  await pushAll(cache, [top!]);
  const now = new Date(Date.now() + 100 * DAY_MS);

  for (const failAfter of [1, 4]) {
    let budget = failAfter;
    const failing = (blobs: BlobStore) =>
      wrapStore(blobs, {
        // Delete part of what is asked, then fail, like a connection lost mid-batch.
        async deleteMany(keys) {
          const part = keys.slice(0, budget);
          budget -= part.length;
          if (part.length > 0) await blobs.deleteMany(part);
          if (part.length < keys.length) throw new Error('injected failure');
        },
      });
    const err = await withStore(cache, (blobs) =>
      prune(
        { blobs: failing(blobs), logger: new MemoryLogger(), policy: policy(1) },
        { now, narInfoBatchSize: 2 },
      ).then(
        () => undefined,
        (e: unknown) => e,
      ),
    );
    assert.ok(err instanceof PruneIncompleteError, String(err));
    assert.match(err.message, /injected failure/);
    assert.match(err.hint ?? '', /run the prune again/);
    const left = await assertIntact(cache);
    assert.ok(left < 7 && left > 0, `some narinfos deleted, some left (${left})`);
  }
  // The next run completes the job.
  const r: PruneResult = await withStore(cache, (blobs) =>
    prune({ blobs, logger: new MemoryLogger(), policy: policy(1) }, { now }),
  );
  assert.equal(r.interrupted, false);
  const after = await inventory(cache.client, cache.bucket);
  // The failed prunes could not delete their intents either (the injected failure hits
  // every delete): those stay until they expire, and name nothing left to delete.
  assert.deepEqual(
    [...after.keys].filter((k) => !k.startsWith('loft/prune-intents/') && k !== PRUNE_MARK_KEY),
    ['nix-cache-info'],
  );
  assert.equal(await assertIntact(cache), 0);
});

test('paths written or refreshed while a prune runs are kept with their closures', async () => {
  const cache = await makePublicCache('prune-race');
  const [oldTop, lateTop, refreshedTop] = await nixBuild(`
    let
      oldDep = mk "race-old-dep" "echo old > $out";
      midDep = mk "race-mid-dep" "echo mid > $out";
    in [
      (mk "race-old-top" "echo \${oldDep} > $out")
      (mk "race-late-top" "echo \${oldDep} > $out")
      (mk "race-refreshed-top" "echo \${midDep} > $out")
    ]`);
  await pushAll(cache, [oldTop!, refreshedTop!]);
  // A writer without leases (nix copy, older Loft) publishing lateTop during the prune: its
  // NAR is stored already, its narinfo comes during the prune (a Loft push would instead
  // wait for the prune's intent). Here: pushed, then the narinfo taken back, to put later.
  await pushAll(cache, [lateTop!]);
  const lateKey = narInfo(lateTop!);
  const lateBody = await (
    await cache.client.send(new GetObjectCommand({ Bucket: cache.bucket, Key: lateKey }))
  ).Body!.transformToString();
  await cache.client.send(new DeleteObjectCommand({ Bucket: cache.bucket, Key: lateKey }));
  const refreshedDep = (await nixRequisites([refreshedTop!])).find((p) => p !== refreshedTop)!;
  const oldDep = (await nixRequisites([oldTop!])).find((p) => p !== oldTop)!;
  await sleepMs(1100); // so a refresh lands in a later second than the first write
  const now = new Date(Date.now() + 100 * DAY_MS); // everything is expired

  let lists = 0;
  let refreshed = false;
  const r = await withStore(cache, async (blobs) => {
    const racing = wrapStore(blobs, {
      // Rule 2: a new narinfo (relying on oldDep) is published after the first listing.
      list(prefix, opts) {
        const inner = blobs.list(prefix, opts);
        if (prefix !== '' || opts?.recursive !== false || ++lists !== 2) return inner;
        return (async function* () {
          await cache.client.send(
            new PutObjectCommand({ Bucket: cache.bucket, Key: lateKey, Body: lateBody }),
          );
          yield* blobs.list(prefix, opts);
        })();
      },
      // Rule 3: a push refreshes refreshedTop after the re-listing, just before our HEAD.
      async head(key) {
        if (!refreshed && key === narInfo(refreshedTop!)) {
          refreshed = true;
          await blobs.copy(key, key, { contentType: 'text/x-nix-narinfo' });
        }
        return blobs.head(key);
      },
    });
    return prune(
      { blobs: racing, logger: new MemoryLogger(), policy: policy(1) },
      { now, narInfoBatchSize: 1 },
    );
  });
  assert.ok(refreshed, 'the refresh happened during the prune');
  assert.deepEqual(r.spared, [narInfo(refreshedTop!)]);
  const after = await inventory(cache.client, cache.bucket);
  for (const p of [lateTop!, oldDep, refreshedTop!, refreshedDep]) {
    assert.ok(after.keys.has(narInfo(p)), `${p} kept`);
  }
  assert.ok(!after.keys.has(narInfo(oldTop!)), 'the expired root without a new user goes');
  assert.equal(await assertIntact(cache), 4);
  await substituteFresh(cache.url, cache.publicKey, [lateTop!, refreshedTop!]);
});
