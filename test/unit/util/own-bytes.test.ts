import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ownBytes } from '../../../src/util/own-bytes.js';

test('ownBytes copies a view on a larger buffer (a pooled Buffer) into 32 bytes of its own, and passes an owned array through', () => {
  const pooled = Buffer.from(new Uint8Array(32).fill(7));
  assert.ok(pooled.buffer.byteLength > 32, 'a small Buffer views the shared pool');
  const own = ownBytes(pooled);
  assert.equal(own.buffer.byteLength, 32);
  assert.deepEqual([...own], [...pooled]);
  const alone = new Uint8Array(32);
  assert.equal(ownBytes(alone), alone);
  // What the copy saves: cloning the pooled view (as postMessage does) copies the whole pool.
  assert.ok(structuredClone(pooled).buffer.byteLength > 32);
  assert.equal(structuredClone(own).buffer.byteLength, 32);
});
