/**
 * The reads a push makes right after writing its lease, seen at an HTTP proxy in front of
 * RGW: the prune intents and the prune mark are read alongside the HEAD that confirms the
 * lease (one round trip, not two), never before the lease is written; and a lease the HEAD
 * does not find stops the push before it publishes anything, with the lease deleted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nixBuild } from '../../support/nix.js';
import { assertCacheServes, makePublicCache, type TestCache } from '../../support/cache.js';
import { s3TestEnv, startFaultProxy, storeOptions, type FaultAction } from '../../support/s3.js';
import { openPushContext, type TestPushContext } from '../../support/push.js';
import { createS3Store } from '../../../src/storage/index.js';
import { INTENT_PREFIX, LEASE_PREFIX } from '../../../src/storage/coordination.js';
import { PRUNE_MARK_KEY } from '../../../src/storage/prune-mark.js';
import { push } from '../../../src/upload/push.js';
import { inventory } from '../prune/support.js';

/** Longer than any scheduling hiccup: a read sent only after the HEAD's answer comes later. */
const HEAD_DELAY_MS = 1500;

async function twoPaths(tag: string): Promise<string> {
  const [top] = await nixBuild(`
    let a = mk "${tag}-a" "mkdir $out; echo a > $out/f"; in mk "${tag}-top" "echo \${a} > $out"`);
  return top!;
}

type FaultProxy = Awaited<ReturnType<typeof startFaultProxy>>;

/**
 * A public cache with two paths to push, and a push context whose store goes through a
 * proxy that gives the first HEAD of a lease `action` (its fault is named `name`).
 */
async function withLeaseHeadFault(
  tag: string,
  name: string,
  action: FaultAction,
  body: (s: {
    cache: TestCache;
    top: string;
    proxy: FaultProxy;
    ctx: TestPushContext;
  }) => Promise<void>,
): Promise<void> {
  const cache = await makePublicCache(tag);
  const top = await twoPaths(tag);
  const proxy = await startFaultProxy(s3TestEnv().endpoint, [
    {
      name,
      match: (r) => r.method === 'HEAD' && r.path.startsWith(`/${cache.bucket}/${LEASE_PREFIX}`),
      action,
      times: 1,
    },
  ]);
  const blobs = createS3Store(storeOptions(cache.bucket, { endpoint: proxy.url }));
  const ctx = await openPushContext({ bucket: cache.bucket, key: cache.key, blobs });
  try {
    await body({ cache, top, proxy, ctx });
  } finally {
    await ctx.close();
    await proxy.close();
  }
}

test('a push lists the prune intents and reads the prune mark after its lease PUT and while the HEAD confirming the lease is unanswered', async () => {
  await withLeaseHeadFault(
    'lease-reads',
    'slow lease HEAD',
    { kind: 'delay-response', ms: HEAD_DELAY_MS },
    async ({ cache, top, proxy, ctx }) => {
      const r = await push(ctx, [top], { uploadThreads: 2, skipSignedByKeys: [] });
      assert.ok(r.complete);
      const find = (what: string, p: (e: (typeof proxy.log)[number]) => boolean) => {
        const i = proxy.log.findIndex(p);
        assert.ok(i >= 0, `${what} was not sent`);
        return { i, at: proxy.log[i]!.at };
      };
      const leasePrefix = `/${cache.bucket}/${LEASE_PREFIX}`;
      const put = find(
        'the lease PUT',
        (e) => e.method === 'PUT' && e.path.startsWith(leasePrefix),
      );
      const head = find('the lease HEAD', (e) => e.fault === 'slow lease HEAD');
      const list = find(
        'the intents LIST',
        (e) =>
          e.method === 'GET' &&
          e.path === `/${cache.bucket}` &&
          new URLSearchParams(e.query).get('prefix') === INTENT_PREFIX,
      );
      const mark = find(
        'the prune mark GET',
        (e) => e.method === 'GET' && e.path === `/${cache.bucket}/${PRUNE_MARK_KEY}`,
      );
      for (const [what, read] of [
        ['the HEAD', head],
        ['the intents LIST', list],
        ['the prune mark GET', mark],
      ] as const) {
        assert.ok(read.i > put.i, `${what} came after the lease PUT`);
      }
      for (const [what, read] of [
        ['the intents LIST', list],
        ['the prune mark GET', mark],
      ] as const) {
        assert.ok(
          read.at - head.at < HEAD_DELAY_MS,
          `${what} arrived ${read.at - head.at} ms after the lease HEAD, which was answered after ${HEAD_DELAY_MS} ms`,
        );
      }
      await assertCacheServes(cache, 2, [top]);
    },
  );
});

test('a lease its HEAD does not find fails the push with COORD_NOT_VISIBLE before any narinfo is written, and the lease is deleted', async () => {
  await withLeaseHeadFault(
    'lease-unseen',
    'lease not found',
    { kind: 'status', status: 404, code: 'NoSuchKey' },
    async ({ cache, top, proxy, ctx }) => {
      await assert.rejects(push(ctx, [top], { uploadThreads: 2, skipSignedByKeys: [] }), {
        code: 'COORD_NOT_VISIBLE',
      });
      assert.equal(proxy.rules[0]!.times, 0, 'the lease HEAD was answered 404');
      const inv = await inventory(cache.client, cache.bucket);
      assert.deepEqual(inv.narInfos, []);
      assert.deepEqual(
        [...inv.keys].filter((k) => k.startsWith(LEASE_PREFIX)),
        [],
      );
    },
  );
});
