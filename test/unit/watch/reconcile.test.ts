import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hashPartFast } from '../../../src/nix/store-path.js';
import { SeenSet, diffValidPaths } from '../../../src/watch/reconcile.js';

const NIX32 = '0123456789abcdfghijklmnpqrsvwxyz';
function hp(i: number): string {
  let s = '';
  let n = i;
  for (let k = 0; k < 8; k++) {
    s = NIX32[n % 32] + s;
    n = Math.floor(n / 32);
  }
  return 'a'.repeat(24) + s;
}
const path = (i: number) => `/nix/store/${hp(i)}-pkg-${i}`;

test('fresh = valid but never seen; gone = seen but no longer valid', () => {
  const seen = new Set([hp(1), hp(2), hp(9)]);
  const d = diffValidPaths([path(1), path(2), path(3), path(4)], seen);
  assert.deepEqual(d.fresh, [path(3), path(4)]);
  assert.deepEqual(d.gone, [hp(9)]);
  assert.equal(hashPartFast(path(3)), hp(3));
});

test('the seen set writes through to its store and loads from it', () => {
  const stored = new Set<string>([hp(1)]);
  const store = {
    seenHashParts: () => [...stored],
    markSeen: (h: Iterable<string>) => {
      for (const x of h) stored.add(x);
    },
    unsee: (h: Iterable<string>) => {
      for (const x of h) stored.delete(x);
    },
  };
  const s = new SeenSet(store);
  assert.ok(s.has(hp(1)));
  s.add([hp(2), hp(1)]);
  s.noteQueued([path(3)]); // persisted by the queue itself
  s.remove([hp(1)]);
  assert.deepEqual([...stored].sort(), [hp(2)]);
  assert.deepEqual([...s.view()].sort(), [hp(2), hp(3)].sort());
});

test('reconciling 100k valid paths against 100k seen finds exactly the 10 fresh and 10 gone', () => {
  const valid = Array.from({ length: 100_000 }, (_, i) => path(i));
  const seen = new Set(Array.from({ length: 100_000 }, (_, i) => hp(i + 10)));
  const d = diffValidPaths(valid, seen);
  // Its speed is not asserted here (a timed test only measures the machine's load).
  assert.deepEqual(d.fresh, valid.slice(0, 10));
  assert.deepEqual(
    [...d.gone].sort(),
    Array.from({ length: 10 }, (_, i) => hp(100_000 + i)).sort(),
  );
});
