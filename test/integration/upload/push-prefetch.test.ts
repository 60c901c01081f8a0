/**
 * Packing ahead of the lease, against the real nix-daemon and Ceph RGW: a push packs its
 * first NARs while the lease's round trips run, sends none of them before the lease holds
 * (the bucket's own listing says so), has every path it uploads rooted against Nix's
 * garbage collector by then (Nix's own `--gc --print-dead` says so), uses what it packed
 * instead of packing it again, and the cache serves the closure to real Nix with
 * require-sigs; a push whose lease fails cancels what it packed and writes no NAR.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nixBuild, nixRequisites, runNix } from '../../support/nix.js';
import { assertCacheServes, makePublicCache, type TestCache } from '../../support/cache.js';
import { listKeysRaw } from '../../support/s3.js';
import { openPushContext, type TestPushContext } from '../../support/push.js';
import { push } from '../../../src/upload/push.js';
import type { PackStream } from '../../../src/pack/index.js';

/** A chain of `n` paths of 200 KB each; returns its top and every path of it. */
async function buildChain(tag: string, n: number): Promise<{ top: string; paths: string[] }> {
  const [top] = await nixBuild(`
    let
      step = prev: i: mk "${tag}-\${toString i}" "mkdir $out; echo \${prev} > $out/ref; head -c 200000 /dev/urandom > $out/data";
    in builtins.foldl' step (mk "${tag}-base" "mkdir $out; head -c 200000 /dev/urandom > $out/data") (builtins.genList (i: i) ${n - 1})`);
  return { top: top!, paths: await nixRequisites([top!]) };
}

/** Every pack the context's (real) packer is asked for, with its stream, in order. */
function recordPacks(ctx: TestPushContext): { path: string; stream: PackStream }[] {
  const packs: { path: string; stream: PackStream }[] = [];
  const packer = ctx.packer!;
  const pack = packer.pack.bind(packer);
  packer.pack = (req) => {
    const stream = pack(req);
    packs.push({ path: req.path, stream });
    return stream;
  };
  return packs;
}

/** Resolves once `cond` holds; fails after 10 s. */
async function until(cond: () => boolean, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > 10_000) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Push `top` with four upload threads; once the lease is written (and not yet confirmed),
 * wait until two NARs are being packed, then run `atLease`.
 */
function pushPackingAhead(
  ctx: TestPushContext,
  top: string,
  packs: readonly unknown[],
  atLease: () => Promise<void>,
) {
  return push(ctx, [top], {
    uploadThreads: 4,
    skipSignedByKeys: [],
    lease: {
      hooks: {
        'lease-written': async () => {
          await until(() => packs.length >= 2, 'two NARs are being packed');
          await atLease();
        },
      },
    },
  });
}

async function narKeys(cache: TestCache): Promise<string[]> {
  return listKeysRaw(cache.client, cache.bucket, 'nar/');
}

test('a push packs its first two NARs while the lease is taken, sends none before it holds, has every path it uploads rooted by then, and packs no path twice', async () => {
  const cache = await makePublicCache('push-prefetch');
  const { top, paths } = await buildChain('prefetch', 5);
  const base = paths.find((p) => p.endsWith('-prefetch-base'))!;
  const ctx = await openPushContext({ bucket: cache.bucket, key: cache.key });
  const packs = recordPacks(ctx);
  let packedAtLease: string[] = [];
  let narsAtLease: string[] | undefined;
  let deadAtLease: string[] | undefined;
  try {
    // The lease is written and not yet confirmed: nothing may have been sent.
    const r = await pushPackingAhead(ctx, top, packs, async () => {
      packedAtLease = packs.map((p) => p.path);
      narsAtLease = await narKeys(cache);
      // What a garbage collection would delete now (nothing roots this test's paths but
      // the push's temp roots).
      const dead = new Set((await runNix('nix-store', ['--gc', '--print-dead'])).split('\n'));
      deadAtLease = paths.filter((p) => dead.has(p));
    });
    assert.deepEqual(
      r.failed.map((f) => f.reason),
      [],
    );
    assert.equal(r.complete, true);
    assert.equal(r.uploaded.length, paths.length);
  } finally {
    await ctx.close();
  }
  assert.equal(packedAtLease.length, 2, `packed before the lease held: ${packedAtLease}`);
  assert.ok(packedAtLease.includes(base), 'the path every level waits on is packed first');
  assert.deepEqual(narsAtLease, []);
  assert.deepEqual(deadAtLease, [], 'every path to upload is rooted while the lease is taken');
  const packed = packs.map((p) => p.path);
  assert.equal(new Set(packed).size, packed.length, `a path was packed twice: ${packed}`);
  assert.equal(packed.length, paths.length);
  assert.equal((await narKeys(cache)).length, paths.length);
  await assertCacheServes(cache, paths.length, [top]);
});

test('a push whose lease fails cancels the NARs it packed ahead and writes no NAR', async () => {
  const cache = await makePublicCache('push-prefetch-fail');
  const { top } = await buildChain('prefetch-fail', 3);
  const ctx = await openPushContext({ bucket: cache.bucket, key: cache.key });
  const packs = recordPacks(ctx);
  try {
    await assert.rejects(
      pushPackingAhead(ctx, top, packs, () =>
        Promise.reject(new Error('lease refused by the test')),
      ),
      /lease refused by the test/,
    );
    // Before the context closes (its packer's shutdown would end every stream anyway).
    assert.equal(packs.length, 2);
    for (const p of packs) assert.equal(p.stream.destroyed, true, `${p.path} was left packing`);
  } finally {
    await ctx.close();
  }
  assert.deepEqual(await narKeys(cache), []);
});
