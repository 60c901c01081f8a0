/**
 * How many packer threads a push starts by default: one per core but the main thread's,
 * at least one, at most four.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultPackerThreads } from '../../../src/pack/index.js';

test('default packer threads: cores minus one, at least 1 and at most 4', () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 8, 64].map((cores) => defaultPackerThreads(cores)),
    [1, 1, 2, 3, 4, 4, 4],
  );
});
