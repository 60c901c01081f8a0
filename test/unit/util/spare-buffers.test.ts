/**
 * SpareBuffers: a buffer given back is the one the next take() returns; only buffers of
 * its size are kept, and no more than it was told to keep.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpareBuffers } from '../../../src/util/spare-buffers.js';

test('a buffer given back is taken again; a new one has the size and its own memory', () => {
  const spare = new SpareBuffers(4096, 2);
  const a = spare.take();
  assert.equal(a.length, 4096);
  assert.equal(a.buffer.byteLength, 4096, 'not a view of a shared pool');
  spare.give(a);
  assert.equal(spare.take(), a);
  assert.notEqual(spare.take(), a, 'taken once, not twice');
});

test('buffers of another size, and more than the number kept, are not kept, and give() says so', () => {
  const spare = new SpareBuffers(4096, 2);
  const [a, b, c] = [spare.take(), spare.take(), spare.take()];
  assert.equal(spare.give(Buffer.allocUnsafeSlow(100)), false);
  assert.equal(spare.give(a), true);
  assert.equal(spare.give(b), true);
  assert.equal(spare.give(c), false);
  assert.equal(spare.count, 2);
  const again = new Set([spare.take(), spare.take(), spare.take()]);
  assert.ok(again.has(a) && again.has(b), 'the two kept come back');
  assert.ok(!again.has(c), 'the third was not kept');
  for (const x of again) assert.equal(x.length, 4096);
});
