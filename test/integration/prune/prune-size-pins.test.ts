/**
 * The size cap holds on a young bucket, pins survive it, malformed pins and leases are
 * skipped: real pushes from real Nix builds into Ceph RGW, real Nix substituting what is
 * left with signatures required, and a deep integrity walk (sizes and hashes of every NAR,
 * read from the bucket) after every prune.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { nixBuild, nixRequisites } from '../../support/nix.js';
import { makePublicCache, substituteFresh, type TestCache } from '../../support/cache.js';
import { prune, type PruneResult } from '../../../src/prune/prune.js';
import { policyFromSettings } from '../../../src/prune/policy.js';
import { narInfoDeletions } from '../../../src/prune/plan.js';
import { MemoryLogger } from '../../../src/util/log.js';
import { isLoftError } from '../../../src/util/errors.js';
import { runPrune } from '../../../src/cli/commands/prune.js';
import { runListPins, runPin, runUnpin } from '../../../src/cli/commands/pins.js';
import {
  checkDeepIntegrity,
  hashPartOfPath,
  inventory,
  pushRoots,
  sleepMs,
  withStore,
} from './support.js';

async function assertDeepIntact(cache: TestCache): Promise<number> {
  const r = await checkDeepIntegrity(cache.client, cache.bucket);
  assert.deepEqual(r.problems, [], 'every narinfo has its NAR (size and hash) and references');
  return r.narInfos;
}

const settings = (maxSizeBytes: number, graceMinutes?: number) => ({
  retentionDays: 30,
  maxSizeBytes,
  targetPercentage: 100,
  graceMinutes,
});

const narInfoKeys = async (cache: TestCache) =>
  new Set((await inventory(cache.client, cache.bucket)).narInfos);
const keysOf = (paths: string[]) => new Set(paths.map((p) => `${hashPartOfPath(p)}.narinfo`));

async function pushAll(cache: TestCache, roots: string[]): Promise<void> {
  const r = await pushRoots(cache, roots, { writeListing: true });
  assert.equal(r.complete, true, JSON.stringify(r.failed));
}

test('a size prune of a bucket filled seconds ago evicts least recently used closures to the target; the rest substitutes', async () => {
  const cache = await makePublicCache('prune-size-young');
  const [a, b, c] = await nixBuild(`
    let
      shared = mk "size-shared" "head -c 60000 /dev/urandom > $out";
      blob = n: mk "size-blob-\${n}" "head -c 60000 /dev/urandom > $out";
    in [
      (mk "size-a" "echo \${shared} \${blob "a"} > $out")
      (mk "size-b" "echo \${blob "b"} > $out")
      (mk "size-c" "echo \${shared} \${blob "c"} > $out")
    ]`);
  const closureC = await nixRequisites([c!]);
  // Pushed in order a, b, c: c is the most recently used.
  for (const root of [a!, b!, c!]) {
    await pushAll(cache, [root]);
    await sleepMs(1100); // LastModified has one-second resolution
  }
  const before = await inventory(cache.client, cache.bucket);
  assert.equal(before.narInfos.length, 7);
  const cap = Math.floor(before.bytes * 0.7);

  await withStore(cache, async (blobs) => {
    // With the default grace period (10 minutes) everything is young: spared, and said so.
    let text = '';
    await runPrune(
      { blobs, logger: new MemoryLogger(), config: { prune: settings(cap) } },
      { dryRun: true },
      { out: { write: (s: string) => (text += s) } },
    );
    assert.match(text, /spare 7 narinfos younger than 10 min \(prune_grace_minutes\)/);
    assert.doesNotMatch(text, /over the size budget/);

    const r = await prune({
      blobs,
      logger: new MemoryLogger(),
      policy: policyFromSettings(settings(cap, 0)),
    });
    assert.equal(r.plan!.size!.triggered, true);
  });
  const after = await inventory(cache.client, cache.bucket);
  assert.ok(after.bytes <= cap, `under the target: ${after.bytes} <= ${cap} bytes`);
  // Newest first: c's closure fits (with the shared path), b's does not; a and b go.
  assert.deepEqual(new Set(after.narInfos), keysOf(closureC));
  assert.equal(await assertDeepIntact(cache), closureC.length);
  await substituteFresh(cache.url, cache.publicKey, [c!]);
});

test('a pinned closure survives a prune that evicts everything else; a pin replaces its namesake; unpinning lets it go', async () => {
  const cache = await makePublicCache('prune-pins');
  const [v1, v2, other, never] = await nixBuild(`
    let dep = n: mk "pin-dep-\${n}" "echo \${n} > $out";
    in [
      (mk "pin-app-1" "echo \${dep "1"} > $out")
      (mk "pin-app-2" "echo \${dep "2"} > $out")
      (mk "pin-other" "echo \${dep "3"} > $out")
      (mk "pin-never-pushed" "echo never > $out")
    ]`);
  await pushAll(cache, [v1!, v2!, other!]);
  const closure2 = await nixRequisites([v2!]);
  let out = '';
  const io = { out: { write: (s: string) => (out += s) } };

  await withStore(cache, async (blobs) => {
    const ctx = { blobs, logger: new MemoryLogger() };
    // Bad input: a path not in the cache is refused, and nothing is written.
    await assert.rejects(
      runPin(ctx, { path: never!, name: 'production' }, io),
      (e) => isLoftError(e, 'PIN_NOT_CACHED') && e.message.includes(never!),
    );
    await runPin(ctx, { path: v1!, name: 'production' }, io);
    await runPin(ctx, { path: v2!, name: 'production' }, io);
    assert.match(out, /replacing the older pin of that name/);
    out = '';
    await runListPins(ctx, io);
    assert.equal(out, `production\t${v2}\t${out.split('\t')[2]}`);
    await assert.rejects(runUnpin(ctx, { name: 'staging' }, io), (e) =>
      isLoftError(e, 'PIN_NOT_FOUND'),
    );

    // A cap of one byte: every closure but the pinned one goes.
    let text = '';
    const config = { prune: settings(1, 0) };
    await runPrune(
      { blobs, logger: new MemoryLogger(), config },
      { dryRun: true },
      { out: { write: (s: string) => (text += s) } },
    );
    assert.match(
      text,
      new RegExp(`spare 2 narinfos pinned, with their closures \\(1 pin: production: ${v2}\\)`),
    );
    const r = await prune({
      blobs,
      logger: new MemoryLogger(),
      policy: policyFromSettings(settings(1, 0)),
    });
    assert.equal(r.deleted.narInfos.count, 4);
  });
  assert.deepEqual(await narInfoKeys(cache), keysOf(closure2));
  await assertDeepIntact(cache);
  await substituteFresh(cache.url, cache.publicKey, [v2!]);

  await withStore(cache, async (blobs) => {
    await runUnpin({ blobs, logger: new MemoryLogger() }, { name: 'production' }, io);
    await prune({ blobs, logger: new MemoryLogger(), policy: policyFromSettings(settings(1, 0)) });
  });
  assert.deepEqual(await narInfoKeys(cache), new Set());
});

test('malformed pins and leases are skipped with a warning naming the key, and delete nothing more', async () => {
  const cache = await makePublicCache('prune-malformed');
  const [kept, gone] = await nixBuild(`[
    (mk "malformed-kept" "echo kept > $out")
    (mk "malformed-gone" "echo gone > $out")
  ]`);
  await pushAll(cache, [kept!, gone!]);
  const policy = policyFromSettings(settings(1, 0));
  let dry: PruneResult | undefined;
  await withStore(cache, async (blobs) => {
    await runPin(
      { blobs, logger: new MemoryLogger() },
      { path: kept!, name: 'keep' },
      {
        out: { write: () => true },
      },
    );
    dry = await prune({ blobs, logger: new MemoryLogger(), policy }, { dryRun: true });
  });
  const put = (Key: string, Body: string) =>
    cache.client.send(new PutObjectCommand({ Bucket: cache.bucket, Key, Body }));
  await put('loft/leases/bad.json', '{not json');
  await put(
    'loft/leases/wrong.json',
    JSON.stringify({ type: 'loft-lease', version: 1, ttlSeconds: 60, narInfos: ['x'], nars: [] }),
  );
  await put(
    'loft/pins/broken.json',
    JSON.stringify({ type: 'loft-pin', version: 1, name: 'broken', storePath: 'nope' }),
  );

  const logger = new MemoryLogger();
  const r = await withStore(cache, (blobs) => prune({ blobs, logger, policy }));
  const warnings = logger.lines.filter((l) => l.level === 'warn').map((l) => l.msg);
  for (const key of ['loft/leases/bad.json', 'loft/leases/wrong.json', 'loft/pins/broken.json']) {
    assert.ok(
      warnings.some((w) => w.includes(key) && /malformed, skipped/.test(w)),
      `${key} named in a warning: ${JSON.stringify(warnings)}`,
    );
  }
  // Exactly what the plan made before the malformed objects existed.
  assert.deepEqual(r.deleted.narInfos.count, narInfoDeletions(dry!.plan!).length);
  assert.deepEqual(await narInfoKeys(cache), keysOf([kept!]));
  await assertDeepIntact(cache);
});
