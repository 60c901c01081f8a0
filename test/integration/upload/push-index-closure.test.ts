/**
 * The closure of cached paths walked through the path infos the local index recorded
 * (src/upload/prepare.ts), against RGW and the real daemon. The index is edited by hand
 * to hold infos that differ from the store's, so the tests see which one a push used.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { nixBuild, runNix } from '../../support/nix.js';
import { assertCacheServes, makePublicCache, type TestCache } from '../../support/cache.js';
import { openPushContext, type TestPushContext } from '../../support/push.js';
import { LocalIndex } from '../../../src/index/local-index.js';
import { storePathHashPart } from '../../../src/nix/store-path.js';
import { pathInfoFromJson, pathInfoToJson } from '../../../src/store/path-info.js';
import { preparePush, push } from '../../../src/upload/push.js';

async function threePaths(tag: string): Promise<{ a: string; b: string; top: string }> {
  const [top] = await nixBuild(`
    let a = mk "${tag}-a" "mkdir $out; echo a > $out/f"; b = mk "${tag}-b" "echo \${a} > $out";
    in mk "${tag}-top" "echo \${b} > $out"`);
  const refs = async (p: string) =>
    (await runNix('nix-store', ['-q', '--references', p])).trim().split('\n');
  const b = (await refs(top!)).find((p) => p.endsWith(`-${tag}-b`))!;
  const a = (await refs(b)).find((p) => p.endsWith(`-${tag}-a`))!;
  return { a, b, top: top! };
}

/** Record, as `path`'s path info in the index, the one it has there with other references. */
function editReferences(index: LocalIndex, path: string, references: string[]): void {
  const hp = storePathHashPart(path);
  const row = index.getPresentWithPathInfo([hp]).get(hp);
  assert.ok(row, `the push recorded path info for ${path}`);
  const info = pathInfoFromJson(path, row.pathInfo, '/nix/store')!;
  assert.equal(
    index.recordPathInfos([{ hashPart: hp, pathInfo: pathInfoToJson({ ...info, references }) }]),
    1,
  );
}

const opts = { uploadThreads: 2, skipSignedByKeys: [] };

/** A public cache holding the three paths, pushed with a fresh index, for `body`. */
async function withPushedPaths(
  tag: string,
  body: (s: {
    cache: TestCache;
    paths: { a: string; b: string; top: string };
    index: LocalIndex;
    ctx: TestPushContext;
  }) => Promise<void>,
): Promise<void> {
  const cache = await makePublicCache(`index-closure-${tag}`);
  const paths = await threePaths(`ix${tag}`);
  const index = LocalIndex.open(join(mkdtempSync(join(tmpdir(), 'loft-index-')), 'i.db'), 'c');
  const ctx = await openPushContext({ bucket: cache.bucket, key: cache.key, index });
  try {
    assert.equal((await push(ctx, [paths.top], opts)).uploaded.length, 3);
    await body({ cache, paths, index, ctx });
  } finally {
    await ctx.close();
    index.close();
  }
}

test('a push walks cached non-root paths through the path infos its index recorded, roots through the daemon; --force-scan walks all through the daemon', async () => {
  await withPushedPaths('walk', async ({ paths: { a, b, top }, index, ctx }) => {
    // b's recorded info now says it references nothing: a walk that uses it never finds a.
    editReferences(index, b, []);
    const walked = await preparePush(ctx, [top], opts);
    assert.deepEqual(walked.closure.map((i) => i.path).sort(), [b, top].sort());
    assert.deepEqual([...walked.fromIndex], [b]);
    // A root's recorded info is never used: top's says it references nothing, yet b is walked.
    editReferences(index, top, []);
    assert.deepEqual(
      (await preparePush(ctx, [top], opts)).closure.map((i) => i.path).sort(),
      [b, top].sort(),
    );
    const forced = await preparePush(ctx, [top], { ...opts, ignoreIndex: true });
    assert.deepEqual(forced.closure.map((i) => i.path).sort(), [a, b, top].sort());
    assert.equal(forced.fromIndex.size, 0);
  });
});

test('a path the index recorded with other references than the store has now, found gone from the bucket, is uploaded with the store`s, and so is what they reach', async () => {
  await withPushedPaths('stale', async ({ cache, paths: { a, b, top }, index, ctx }) => {
    editReferences(index, b, [b]);
    // Everything vanishes from the bucket behind the index's back; the index forgets only
    // top, so the plan uploads top and checks the index-known b it references.
    for (const p of [a, b, top]) {
      await cache.client.send(
        new DeleteObjectCommand({
          Bucket: cache.bucket,
          Key: `${storePathHashPart(p)}.narinfo`,
        }),
      );
    }
    index.forgetPresent([storePathHashPart(top)]);
    const second = await push(ctx, [top], opts);
    assert.equal(second.complete, true);
    assert.deepEqual(second.uploaded.map((u) => u.path).sort(), [a, b, top].sort());
    // The oracle is the bucket: b's narinfo names a, and every reference is there.
    const got = await cache.client.send(
      new GetObjectCommand({ Bucket: cache.bucket, Key: `${storePathHashPart(b)}.narinfo` }),
    );
    const text = await got.Body!.transformToString();
    const refsLine = text.split('\n').find((l) => l.startsWith('References: '))!;
    assert.ok(refsLine.includes(a.slice('/nix/store/'.length)), refsLine);
    await assertCacheServes(cache, 3, [top]);
  });
});

test('a re-push writes no path info the index already holds as the daemon gives it, and rewrites a root`s that differs', async () => {
  await withPushedPaths('rewrite', async ({ paths: { top }, index, ctx }) => {
    const written: string[] = [];
    const record = index.recordPathInfos.bind(index);
    index.recordPathInfos = (entries) => {
      written.push(...entries.map((e) => e.hashPart));
      return record(entries);
    };
    assert.equal((await push(ctx, [top], opts)).uploaded.length, 0);
    assert.deepEqual(written, [], 'nothing changed, nothing written');
    editReferences(index, top, []);
    written.length = 0;
    assert.equal((await push(ctx, [top], opts)).uploaded.length, 0);
    assert.deepEqual(written, [storePathHashPart(top)], "the root's, which differed");
    const hp = storePathHashPart(top);
    const row = index.getPresentWithPathInfo([hp]).get(hp)!;
    assert.ok(pathInfoFromJson(top, row.pathInfo, '/nix/store')!.references.length > 0);
  });
});
