/**
 * How far NAR uploads run ahead of narinfo publication, against the real nix-daemon and
 * Ceph RGW: on a deep chain, never more than `uploadThreads` NARs are in flight or stored
 * and waiting for a reference's narinfo (plus, on a chain, the one path whose narinfo is
 * being written), and the cache still ends complete and closure-valid (checked with the
 * bucket's own bytes, not Loft's counters); and a push starts with two NARs in flight, one
 * more allowed per NAR stored.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nixBuild, nixRequisites } from '../../support/nix.js';
import { checkCacheIntegrity, makePublicCache } from '../../support/cache.js';
import { openPushContext } from '../../support/push.js';
import { push } from '../../../src/upload/push.js';
import type { PushEvent } from '../../../src/upload/events.js';

/**
 * Push the closure `expr` builds into a fresh cache, showing `onEvent` every event; checks
 * that the push completed and that the bucket holds the closure whole.
 */
async function pushWatched(
  name: string,
  expr: string,
  uploadThreads: number,
  onEvent: (e: PushEvent) => void,
): Promise<void> {
  const cache = await makePublicCache(name);
  const [top] = await nixBuild(expr);
  const total = (await nixRequisites([top!])).length;
  const ctx = await openPushContext({ bucket: cache.bucket, key: cache.key });
  try {
    const r = await push(ctx, [top!], { uploadThreads, skipSignedByKeys: [], onEvent });
    assert.equal(r.complete, true);
    assert.equal(r.uploaded.length, total);
  } finally {
    await ctx.close();
  }
  const final = await checkCacheIntegrity(cache.client, cache.bucket);
  assert.equal(final.narInfos, total);
  assert.deepEqual(final.problems, []);
}

test('a deep chain never has more than uploadThreads NARs ahead of the narinfo being written', async () => {
  const uploadThreads = 4;
  // Paths started and not yet published (or failed): in flight, stored and waiting, or
  // having their narinfo written.
  const ahead = new Set<string>();
  let most = 0;
  // A chain of 24 paths with 200 KB of data each (all of them go into the bucket).
  await pushWatched(
    'push-pacing',
    `
    let
      step = prev: i: mk "pace-\${toString i}" "mkdir $out; echo \${prev} > $out/ref; head -c 200000 /dev/urandom > $out/data";
    in builtins.foldl' step (mk "pace-base" "mkdir $out; echo base > $out/data") (builtins.genList (i: i) 23)`,
    uploadThreads,
    (e) => {
      if (e.type === 'path-started') {
        ahead.add(e.path);
        most = Math.max(most, ahead.size);
      } else if (e.type === 'path-published' || e.type === 'path-failed') {
        ahead.delete(e.path);
      }
    },
  );
  assert.ok(most <= uploadThreads + 1, `at most ${uploadThreads} + 1 ahead, saw ${most}`);
  assert.ok(most >= 2, `uploads still overlapped (most ahead: ${most})`);
});

test('a push starts two NARs, then allows one more in flight per NAR stored, up to uploadThreads', async () => {
  const uploadThreads = 6;
  const inFlight = new Set<string>();
  let stored = 0;
  let most = 0;
  const overWindow: string[] = [];
  // Ten independent paths of 200 KB under one root: nothing but the window holds them back.
  await pushWatched(
    'push-window',
    `
    let
      leaf = i: mk "window-\${toString i}" "mkdir $out; head -c 200000 /dev/urandom > $out/data";
      leaves = builtins.genList leaf 10;
    in mk "window-root" "mkdir $out; echo \${toString leaves} > $out/refs"`,
    uploadThreads,
    (e) => {
      if (e.type === 'path-started') {
        inFlight.add(e.path);
        most = Math.max(most, inFlight.size);
        const window = Math.min(uploadThreads, 2 + stored);
        if (inFlight.size > window) {
          overWindow.push(`${inFlight.size} in flight after ${stored} stored`);
        }
      } else if (e.type === 'path-stored') {
        inFlight.delete(e.path);
        stored++;
      } else if (e.type === 'path-failed') {
        inFlight.delete(e.path);
      }
    },
  );
  assert.deepEqual(overWindow, []);
  assert.ok(most >= 3, `the window grew past its first two NARs (most in flight: ${most})`);
});
