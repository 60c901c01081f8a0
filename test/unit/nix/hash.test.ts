import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Hash, HASH_SIZES, type HashAlgo } from '../../../src/nix/hash.js';
import { isLoftError } from '../../../src/util/errors.js';

const abc = createHash('sha256').update('abc').digest();
const abcNix32 = '1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s';
const isHashError = (e: Error) => isLoftError(e, 'HASH_INVALID');

test('sha256 parses from every prefixed form and formats back', () => {
  const forms = [
    `sha256:${abcNix32}`,
    `sha256:${abc.toString('hex')}`,
    `sha256:${abc.toString('hex').toUpperCase()}`,
    `sha256:${abc.toString('base64')}`,
    `sha256-${abc.toString('base64')}`,
  ];
  for (const f of forms) {
    const h = Hash.parse(f);
    assert.equal(h.algo, 'sha256', f);
    assert.deepEqual(h.digest, abc, f);
  }
  const h = Hash.parse(`sha256:${abcNix32}`);
  assert.equal(h.toNix32String(), `sha256:${abcNix32}`);
  assert.equal(h.toNix32(), abcNix32);
  assert.equal(h.toHex(), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(
    h.toHexString(),
    'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
  );
  assert.equal(h.toSri(), 'sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=');
  assert.equal(h.toBase64(), 'ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=');
  assert.equal(h.toBase64String(), 'sha256:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=');
  assert.equal(String(h), `sha256:${abcNix32}`);
  assert.equal(JSON.stringify({ h }), `{"h":"sha256:${abcNix32}"}`);
  assert.ok(h.equals(Hash.of('sha256', 'abc')));
  assert.ok(!h.equals(Hash.of('sha256', 'abd')));
});

test('bare digests need a default type (the daemon sends hex without prefix)', () => {
  assert.deepEqual(Hash.parse(abc.toString('hex'), 'sha256').digest, abc);
  assert.deepEqual(Hash.parse(abcNix32, 'sha256').digest, abc);
  assert.throws(
    () => Hash.parse(abc.toString('hex')),
    (e: Error) => isHashError(e) && /type is missing/.test(e.message),
  );
  assert.throws(
    () => Hash.parse(`sha1:${'0'.repeat(40)}`, 'sha256'),
    /expected a sha256 hash, got sha1/,
  );
  assert.equal(Hash.parse(`sha256:${abcNix32}`, 'sha256').algo, 'sha256');
});

test('md5, sha1 and sha512 have their lengths in every encoding', () => {
  for (const algo of ['md5', 'sha1', 'sha256', 'sha512'] as HashAlgo[]) {
    const h = Hash.of(algo, 'loft');
    assert.equal(h.digest.length, HASH_SIZES[algo]);
    for (const s of [h.toNix32String(), h.toHexString(), h.toBase64String(), h.toSri()]) {
      assert.ok(Hash.parse(s).equals(h), `${algo} ${s}`);
    }
  }
  assert.equal(Hash.of('md5', '').toHex(), 'd41d8cd98f00b204e9800998ecf8427e');
  assert.equal(Hash.of('sha512', '').toNix32().length, 103);
  assert.equal(Hash.of('sha1', '').toNix32().length, 32);
  assert.equal(Hash.of('md5', '').toNix32().length, 26);
});

test('bad hashes are rejected with the value and the reason', () => {
  const cases: [string, RegExp][] = [
    [`sha3:${abcNix32}`, /unknown hash type "sha3"/],
    [`sha256:${abcNix32.slice(1)}`, /wrong length 51 for sha256/],
    [`sha256:${'g'.repeat(64)}`, /invalid hexadecimal/],
    [`sha256:e${abcNix32.slice(1)}`, /not in the nix32 alphabet/],
    [`sha256:h${abcNix32.slice(1)}`, /non-canonical/],
    [`sha256:${'!'.repeat(44)}`, /base64/],
    // Base64 whose last character carries bits beyond the digest: not canonical.
    [`sha256:${abc.toString('base64').slice(0, 42)}B=`, /base64/],
    [`sha256-${abcNix32}`, /base64/],
    ['', /type is missing/],
  ];
  for (const [s, re] of cases) {
    assert.throws(
      () => Hash.parse(s),
      (e: Error) => isHashError(e) && re.test(e.message) && e.message.includes(JSON.stringify(s)),
      s,
    );
  }
  assert.equal(Hash.tryParse('nope'), undefined);
  assert.throws(() => new Hash('sha256', Buffer.alloc(20)), /32 bytes, not 20/);
});
