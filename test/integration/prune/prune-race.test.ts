/**
 * Three pushers of overlapping closures, each pushing its root again and again with its own
 * pauses, race size prunes run back to back with a cap (one byte) below anything they need
 * and no grace period. Every push completes; every one that takes a lease has its closure
 * substituted by real Nix (signatures required) just before it lets the lease go. After
 * every prune the bucket is closure-complete by a deep walk that reads each NAR's size and
 * hash from the bucket.
 *
 * The pushers pause between pushes (each for its own length) so that a prune can read the
 * leases while one root's lease is gone and the others are live: what only that root
 * needs is then deleted under the other pushes, and its next push uploads it again. Three
 * pushes started together and run once hold their leases over the same span, so whether a
 * prune ever landed between them was up to the scheduler.
 */
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import { nixBuild } from '../../support/nix.js';
import { makePublicCache, substituteFresh } from '../../support/cache.js';
import { storeOptions } from '../../support/s3.js';
import { openPushContext } from '../../support/push.js';
import { createS3Store } from '../../../src/storage/index.js';
import { prune } from '../../../src/prune/prune.js';
import { push, type PushResult } from '../../../src/upload/push.js';
import { MemoryLogger } from '../../../src/util/log.js';
import { describeError } from '../../../src/util/errors.js';
import { checkDeepIntegrity, tinyCapPolicy } from './support.js';

/** Prunes run until at least MIN_PRUNES have run and two of them deleted something, or
 * MAX_PRUNES have run (then the final check fails: the race did not happen). */
const MIN_PRUNES = 3;
const MAX_PRUNES = 60;
/** Each pusher's pause between two of its pushes: its own base plus up to PAUSE_JITTER_MS. */
const PAUSE_BASE_MS = [250, 400, 550];
const PAUSE_JITTER_MS = 250;

test('three pushers of overlapping closures, pushing again and again, race size prunes: every push completes and each leased one substitutes before its release; every prune leaves the bucket closure-complete; prunes delete under live pushes', async (t) => {
  const cache = await makePublicCache('prune-race3');
  const roots = await nixBuild(`
    let
      blob = n: mk "race3-\${n}" "head -c 30000 /dev/urandom > $out";
      s1 = blob "s1";
      s2 = blob "s2";
    in [
      (mk "race3-r1" "echo \${s1} \${blob "u1"} > $out")
      (mk "race3-r2" "echo \${s1} \${s2} \${blob "u2"} > $out")
      (mk "race3-r3" "echo \${s2} \${blob "u3"} > $out")
    ]`);
  const policy = tinyCapPolicy();
  const blobs = createS3Store(storeOptions(cache.bucket));
  let prunes = 0;
  let deleted = 0;
  let prunesThatDeleted = 0;
  let stop = false;
  const counts = roots.map(() => ({ completed: 0, substitutedUnderLease: 0 }));
  const pusher = async (root: string, i: number): Promise<void> => {
    // Each pusher on its own connections, as on its own machine.
    const mine = counts[i]!;
    const ctx = await openPushContext({ bucket: cache.bucket, key: cache.key });
    try {
      while (!stop) {
        let substituted: unknown = 'not tried';
        const r: PushResult = await push(ctx, [root], {
          uploadThreads: 2,
          skipSignedByKeys: [],
          lease: {
            pollMs: 50,
            hooks: {
              // Published and still leased: what real Nix gets now is what the push left.
              releasing: async () => {
                substituted = await substituteFresh(cache.url, cache.publicKey, [root]).then(
                  () => true,
                  (e: unknown) => e,
                );
              },
            },
          },
        });
        // The protocol makes a push wait for a prune, never fail or stop short.
        assert.ok(r.complete, `push ${i} was not complete`);
        // A push with nothing to publish takes no lease; it has nothing to substitute then.
        if (substituted !== 'not tried') {
          assert.equal(substituted, true, `push ${i}: ${describeError(substituted)}`);
          mine.substitutedUnderLease++;
        }
        mine.completed++;
        await sleep(PAUSE_BASE_MS[i]! + Math.floor(Math.random() * PAUSE_JITTER_MS));
      }
    } finally {
      await ctx.close();
    }
  };
  const pruneLoop = async (): Promise<void> => {
    try {
      while (prunes < MAX_PRUNES && (prunes < MIN_PRUNES || prunesThatDeleted < 2)) {
        const r = await prune({ blobs, logger: new MemoryLogger(), policy });
        prunes++;
        deleted += r.deleted.narInfos.count;
        if (r.deleted.narInfos.count > 0) prunesThatDeleted++;
        const walk = await checkDeepIntegrity(cache.client, cache.bucket);
        assert.deepEqual(walk.problems, [], `after prune ${prunes}`);
      }
    } finally {
      stop = true;
    }
  };
  try {
    const settled = await Promise.allSettled([pruneLoop(), ...roots.map(pusher)]);
    for (const s of settled) if (s.status === 'rejected') throw s.reason;
  } finally {
    await blobs.close();
  }
  t.diagnostic(
    `${prunes} prunes, ${prunesThatDeleted} deleted (${deleted} narinfos); ${JSON.stringify(counts)}`,
  );
  assert.ok(
    counts.every((c) => c.substitutedUnderLease >= 1),
    `per root, pushes completed and substituted under a lease: ${JSON.stringify(counts)}`,
  );
  assert.ok(
    prunesThatDeleted >= 2,
    `${prunesThatDeleted} of ${prunes} prunes deleted narinfos while the pushes ran (${deleted} in all)`,
  );
});
