import { test } from 'node:test';
import assert from 'node:assert/strict';
import { badPaddingAt, framed, padding, readU64, writeU64 } from '../../../src/nix/wire.js';

test('u64: safe integers round-trip; values beyond 2^53-1 come back as bigint', () => {
  const buf = Buffer.alloc(8);
  for (const n of [0, 1, 255, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER]) {
    writeU64(buf, n, 0);
    assert.equal(buf.readBigUInt64LE(0), BigInt(n));
    assert.equal(readU64(buf, 0), n);
  }
  buf.writeBigUInt64LE(2n ** 53n, 0);
  assert.equal(readU64(buf, 0), 2n ** 53n);
  assert.throws(() => writeU64(buf, -1, 0), RangeError);
  assert.throws(() => writeU64(buf, 2 ** 53, 0), RangeError);
});

test('framed strings are length, bytes and zero padding to a multiple of 8', () => {
  assert.deepEqual([0, 1, 7, 8, 9].map(padding), [0, 7, 1, 0, 7]);
  const f = framed(Buffer.from('nix-archive-1'));
  assert.equal(f.length, 8 + 13 + 3);
  assert.equal(readU64(f, 0), 13);
  assert.equal(f.subarray(8, 21).toString(), 'nix-archive-1');
  assert.equal(badPaddingAt(f, 21, 24), -1);
  f[22] = 1;
  assert.equal(badPaddingAt(f, 21, 24), 22);
});
