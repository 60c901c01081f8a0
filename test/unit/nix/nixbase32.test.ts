import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { decodeNix32, encodeNix32, isNix32, nix32Length } from '../../../src/nix/nixbase32.js';
import { isLoftError } from '../../../src/util/errors.js';

const sha256 = (s: string) => createHash('sha256').update(s).digest();

test('sha256("abc") in nix32 is the documented vector', () => {
  const s = '1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s';
  assert.equal(encodeNix32(sha256('abc')), s);
  assert.deepEqual(decodeNix32(s), sha256('abc'));
});

test('the narinfo NarHash vector decodes to the sha256 of the "hi\\n" NAR digest form', () => {
  // From nix-formats.md: the 120-byte NAR of a file "hi\n".
  const s = '1xmr8jicvzszfzpz46g37mlpvbzjl2wpwvl2b05psipssyp1sm8h';
  assert.equal(decodeNix32(s).length, 32);
  assert.equal(encodeNix32(decodeNix32(s)), s);
});

test('lengths follow floor((8n-1)/5)+1', () => {
  assert.equal(nix32Length(20), 32);
  assert.equal(nix32Length(32), 52);
  assert.equal(nix32Length(16), 26);
  assert.equal(nix32Length(64), 103);
  assert.equal(nix32Length(0), 0);
  assert.equal(encodeNix32(Buffer.alloc(0)), '');
  assert.deepEqual(decodeNix32(''), Buffer.alloc(0));
  assert.equal(encodeNix32(Buffer.alloc(20)), '0'.repeat(32));
});

test('bit order: the last character holds the low bits of byte 0', () => {
  assert.equal(encodeNix32(Buffer.from([1])), '01');
  assert.equal(encodeNix32(Buffer.from([0x1f])), '0z');
  assert.equal(encodeNix32(Buffer.from([0x20])), '10');
  assert.equal(encodeNix32(Buffer.from([0xff])), '7z');
});

test('characters outside the alphabet are rejected with the value named', () => {
  for (const bad of ['e', 'o', 'u', 't', 'A', '-', 'é']) {
    const s = bad + '0'.repeat(31);
    assert.throws(
      () => decodeNix32(s),
      (e: Error) => isLoftError(e, 'NIX32_INVALID') && e.message.includes(JSON.stringify(bad)),
      `char ${bad}`,
    );
  }
});

test('impossible lengths are rejected', () => {
  for (const len of [1, 3, 6, 33, 51, 53]) {
    if (nix32Length(Math.floor((len * 5) / 8)) === len) continue;
    assert.throws(
      () => decodeNix32('0'.repeat(len)),
      (e: Error) => isLoftError(e, 'NIX32_INVALID'),
      `len ${len}`,
    );
  }
  // 51 chars decode to 31 bytes, which encode to 50: so 51 is not canonical for any length.
  assert.throws(() => decodeNix32('0'.repeat(51)), /no byte string encodes to 51/);
});

test('leftover high bits in the first character are rejected (non-canonical input)', () => {
  // 52 chars carry 260 bits for 256: the first character may use only its lowest bit.
  assert.equal(decodeNix32('1' + '0'.repeat(51))[31], 0x80);
  assert.throws(() => decodeNix32('2' + '0'.repeat(51)), /non-canonical/);
  assert.throws(() => decodeNix32('z' + '0'.repeat(51)), /non-canonical/);
  // 2 chars for 1 byte: 10 bits, first char may use 3.
  assert.deepEqual(decodeNix32('7z'), Buffer.from([0xff]));
  assert.throws(() => decodeNix32('8z'), /non-canonical/);
  assert.equal(isNix32('8z', 1), false);
  assert.equal(isNix32('7z', 1), true);
  assert.equal(isNix32('7z', 2), false);
});

test('property: decode(encode(bytes)) == bytes and encode(decode(s)) == s', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 80 }), (bytes) => {
      const s = encodeNix32(bytes);
      assert.equal(s.length, nix32Length(bytes.length));
      assert.match(s, /^[0-9a-df-np-sv-z]*$/);
      const back = decodeNix32(s);
      assert.deepEqual(back, Buffer.from(bytes));
      assert.equal(encodeNix32(back), s);
    }),
    { numRuns: 500 },
  );
});

test('property: every accepted string re-encodes to itself (no two spellings of one value)', () => {
  const alphabet = '0123456789abcdfghijklmnpqrsvwxyz';
  fc.assert(
    fc.property(
      fc
        .array(fc.constantFrom(...alphabet), { minLength: 0, maxLength: 60 })
        .map((a) => a.join('')),
      (s) => {
        let bytes: Buffer;
        try {
          bytes = decodeNix32(s);
        } catch {
          return;
        }
        assert.equal(encodeNix32(bytes), s);
      },
    ),
    { numRuns: 1000 },
  );
});
