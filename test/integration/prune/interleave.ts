/**
 * The lease protocol under every interleaving of its steps: a push that relies on a cached
 * path, and a size prune (cap of one byte, no grace period) that wants to delete it, each
 * stopped at one step of its protocol by a hook, in both orders, then both let go. Whatever
 * the interleaving, the push completes, its closure is in the bucket whole (a deep walk:
 * NAR sizes and hashes read from the bucket) and real Nix substitutes it with signatures
 * required. Real daemon, real RGW, real Nix; only the timing is driven.
 */
import assert from 'node:assert/strict';
import { nixBuild, nixRequisites } from '../../support/nix.js';
import { makePublicCache, substituteFresh } from '../../support/cache.js';
import { storeOptions } from '../../support/s3.js';
import { openPushContext } from '../../support/push.js';
import { createS3Store } from '../../../src/storage/index.js';
import { prune, type PruneStep } from '../../../src/prune/prune.js';
import { push } from '../../../src/upload/push.js';
import type { LeaseStep } from '../../../src/upload/lease.js';
import { MemoryLogger, nullLogger } from '../../../src/util/log.js';
import { checkDeepIntegrity, hashPartOfPath, inventory, tinyCapPolicy } from './support.js';
import { PRUNE_MARK_KEY } from '../../../src/storage/prune-mark.js';

const PUSH_STEPS: LeaseStep[] = ['lease-written', 'intents-read', 'rechecked'];
const PRUNE_STEPS: PruneStep[] = [
  'planned',
  'intent-written',
  'protections-read',
  'relisted',
  'narinfos-deleted',
  'nars-deleted',
];

async function isSettled(p: Promise<unknown>): Promise<boolean> {
  const pending = Symbol('pending');
  return (
    (await Promise.race([
      p.then(
        () => true,
        () => true,
      ),
      Promise.resolve(pending),
    ])) !== pending
  );
}

/** A hook that stops its caller until released, and says when it was reached. */
function gate() {
  let reach!: () => void;
  let release!: () => void;
  const reached = new Promise<void>((r) => (reach = r));
  const released = new Promise<void>((r) => (release = r));
  return {
    reached,
    release,
    hook: async () => {
      reach();
      await released;
    },
  };
}

/** Run every interleaving in one order; the two orders are two test files (time limits). */
export async function interleavings(order: 'push first' | 'prune first'): Promise<void> {
  const [dep, top] = await nixBuild(`
    let dep = mk "interleave-dep" "head -c 20000 /dev/urandom > $out";
    in [ dep (mk "interleave-top" "echo \${dep} > $out") ]`);
  const closure = await nixRequisites([top!]);
  const policy = tinyCapPolicy();
  const outcomes: string[] = [];
  /** Interleavings where the prune finished before being let go: the push's lease came
   * before its first reading, so it had nothing to delete (only with the push first). */
  const skipped: string[] = [];
  // One store connection and packer for every interleaving; a bucket (and key) each.
  const shared = await openPushContext({ bucket: 'unused', key: undefined });
  try {
    for (const pushStep of PUSH_STEPS) {
      for (const pruneStep of PRUNE_STEPS) {
        const what = `${order}: push at ${pushStep}, prune at ${pruneStep}`;
        const cache = await makePublicCache('interleave');
        const blobs = createS3Store(storeOptions(cache.bucket));
        const ctx = { ...shared, blobs, signingKey: cache.key, logger: nullLogger };
        const first = await push(ctx, [dep!], { uploadThreads: 2, skipSignedByKeys: [] });
        assert.equal(first.complete, true, what);

        const pushGate = gate();
        const pruneGate = gate();
        // The push logs when it has to wait for the prune's intent: as far as it can go.
        let waiting!: () => void;
        const pushWaits = new Promise<void>((r) => (waiting = r));
        const logger = {
          ...nullLogger,
          info: (msg: string) => {
            if (/waiting for it to finish/.test(msg)) waiting();
          },
        };
        ctx.logger = logger;
        try {
          const startPush = () =>
            push(ctx, [top!], {
              uploadThreads: 2,
              skipSignedByKeys: [],
              lease: { pollMs: 50, hooks: { [pushStep]: pushGate.hook } },
            });
          const startPrune = () =>
            prune(
              { blobs, logger: new MemoryLogger(), policy },
              { hooks: { [pruneStep]: pruneGate.hook } },
            );
          let pushing: ReturnType<typeof startPush>;
          let pruning: ReturnType<typeof startPrune>;
          // Each side goes as far as its step, or as far as the protocol lets it: a push
          // may have to wait for the prune's intent, and a prune that finds nothing to
          // delete (the lease came first) writes no intent and has no later steps.
          const pushAt = () => Promise.race([pushGate.reached, pushWaits, pushing]);
          const pruneAt = () => Promise.race([pruneGate.reached, pruning]);
          if (order === 'push first') {
            pushing = startPush();
            await pushAt();
            pruning = startPrune();
            await pruneAt();
          } else {
            pruning = startPrune();
            await pruneAt();
            pushing = startPush();
            await pushAt();
          }
          if (await isSettled(pruning)) skipped.push(what);
          pushGate.release();
          pruneGate.release();
          const [p, q] = await Promise.all([pushing, pruning]);
          assert.equal(p.complete, true, `${what}: ${JSON.stringify(p.failed)}`);
          assert.equal(q.interrupted, false, what);
          outcomes.push(
            `${what}: uploaded ${p.uploaded.length}, pruned ${q.deleted.narInfos.count}`,
          );
        } finally {
          pushGate.release();
          pruneGate.release();
          await blobs.close();
        }
        const keys = (await inventory(cache.client, cache.bucket)).keys;
        for (const p of closure) {
          assert.ok(keys.has(`${hashPartOfPath(p)}.narinfo`), `${what}: ${p} is in the cache`);
        }
        const walk = await checkDeepIntegrity(cache.client, cache.bucket);
        assert.deepEqual(walk.problems, [], what);
        await substituteFresh(cache.url, cache.publicKey, [top!]);
        // The push deleted its lease when done, and the prune its intent.
        assert.deepEqual(
          [...(await inventory(cache.client, cache.bucket)).keys].filter(
            (k) => k.startsWith('loft/') && k !== PRUNE_MARK_KEY,
          ),
          [],
          `${what}: no lease or intent left behind`,
        );
      }
    }
  } finally {
    await shared.close();
  }
  if (order === 'prune first') {
    // Both outcomes happen: the prune spares the leased path, or deletes it first and the
    // push uploads it again; and every prune reaches the step it is stopped at.
    assert.ok(
      outcomes.some((o) => /uploaded 1,/.test(o)),
      outcomes.join('\n'),
    );
    assert.ok(
      outcomes.some((o) => /uploaded 2,/.test(o)),
      outcomes.join('\n'),
    );
    assert.deepEqual(skipped, []);
  } else {
    // The lease is written before the prune starts: every prune sees it and spares the
    // cached path, so the push never has to upload it again.
    assert.ok(
      outcomes.every((o) => /uploaded 1, pruned 0$/.test(o)),
      outcomes.join('\n'),
    );
  }
}
