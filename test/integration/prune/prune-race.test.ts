/**
 * Three pushes of overlapping closures race size prunes run back to back with a cap (one
 * byte) below anything they need and no grace period. Every push that completes has its
 * closure substituted by real Nix (signatures required) just before it lets its lease go;
 * after every prune the bucket is closure-complete by a deep walk that reads each NAR's
 * size and hash from the bucket.
 */
import { test } from 'node:test';
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

/** At least this many rounds; more, up to MAX_ROUNDS, until a prune has deleted something
 * while pushes ran (whether one lands between two leases is up to the scheduler). */
const MIN_ROUNDS = 2;
const MAX_ROUNDS = 6;

test('three overlapping pushes racing repeated size prunes: each complete push substitutes; every prune leaves the bucket closure-complete', async () => {
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
  const completes: string[] = [];
  let rounds = 0;
  try {
    for (; rounds < MAX_ROUNDS && (rounds < MIN_ROUNDS || deleted === 0); rounds++) {
      let pushing = true;
      const pruneLoop = (async () => {
        while (pushing) {
          const r = await prune({ blobs, logger: new MemoryLogger(), policy });
          prunes++;
          deleted += r.deleted.narInfos.count;
          const walk = await checkDeepIntegrity(cache.client, cache.bucket);
          assert.deepEqual(walk.problems, [], `after prune ${prunes}`);
        }
      })();
      const pushes = roots.map(async (root, i) => {
        // Each push on its own connections, as on its own machine.
        const ctx = await openPushContext({ bucket: cache.bucket, key: cache.key });
        let substituted: unknown = 'not tried';
        try {
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
          if (r.complete) {
            assert.equal(substituted, true, `push ${i}: ${describeError(substituted)}`);
            completes.push(root);
          }
        } finally {
          await ctx.close();
        }
      });
      const settled = await Promise.allSettled(pushes);
      pushing = false;
      await pruneLoop;
      for (const s of settled) if (s.status === 'rejected') throw s.reason;
    }
  } finally {
    await blobs.close();
  }
  // Every push completed (the protocol makes them wait, not fail), prunes did delete.
  assert.equal(completes.length, rounds * roots.length, completes.join(' '));
  assert.ok(prunes >= rounds, `${prunes} prunes ran`);
  assert.ok(
    deleted > 0,
    `prunes deleted ${deleted} narinfos while the pushes ran (${rounds} rounds)`,
  );
});
