import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertValidKey,
  assertValidPrefix,
  hashPartOfNarInfoKey,
  isNarInfoKey,
  isNarKey,
  keyOfNarUrl,
  listingKey,
  narInfoKey,
  narKey,
} from '../../../src/storage/keys.js';
import { isLoftError } from '../../../src/util/errors.js';

const hashPart = '0c7s6kmgd4x8ljy9vhbkwx0r6vp4dq8z';
const narHash = 'sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s';

test('narinfo, listing and NAR keys follow the Nix cache layout', () => {
  assert.equal(narInfoKey(hashPart), `${hashPart}.narinfo`);
  assert.equal(listingKey(hashPart), `${hashPart}.ls`);
  assert.equal(
    narKey(narHash, '.zst'),
    'nar/1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s.nar.zst',
  );
  assert.equal(narKey(narHash, ''), 'nar/1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s.nar');
  assert.equal(narKey(narHash, '.xz'), narKey(narHash, '.xz'), 'deterministic');
});

test('keys are recognised back', () => {
  assert.equal(hashPartOfNarInfoKey(`${hashPart}.narinfo`), hashPart);
  assert.equal(hashPartOfNarInfoKey(`nar/${hashPart}.narinfo`), undefined);
  assert.equal(hashPartOfNarInfoKey('nix-cache-info'), undefined);
  assert.ok(isNarInfoKey(narInfoKey(hashPart)));
  assert.ok(isNarKey(narKey(narHash, '.zst')));
  assert.ok(!isNarKey(narInfoKey(hashPart)));
});

test('bad hashes are refused with STORAGE_INVALID_KEY', () => {
  const bad = (f: () => unknown) => assert.throws(f, (e) => isLoftError(e, 'STORAGE_INVALID_KEY'));
  bad(() => narInfoKey('short'));
  bad(() => narInfoKey(hashPart.replace('0', 'e'))); // 'e' is not in the nix32 alphabet
  bad(() => narInfoKey(`../${hashPart.slice(3)}`));
  bad(() => narKey('sha256:abc', '.zst'));
  bad(() => narKey(narHash.replace('sha256:', 'sha512:'), '.zst'));
  bad(() => narKey(narHash, '.exe'));
});

test('keys are safe relative paths', () => {
  for (const ok of ['nix-cache-info', 'nar/x.nar.zst', 'log/a-b', 'a b+c']) assertValidKey(ok);
  for (const bad of [
    '',
    '/abs',
    'a//b',
    '../x',
    'a/../b',
    'a/./b',
    'a/',
    'a\\b',
    'a\nb',
    'x'.repeat(1025),
  ]) {
    assert.throws(
      () => assertValidKey(bad),
      (e) => isLoftError(e, 'STORAGE_INVALID_KEY'),
      JSON.stringify(bad),
    );
  }
  assertValidPrefix('');
  assertValidPrefix('nar/');
  assertValidPrefix('0c7s');
  assert.throws(() => assertValidPrefix('../'));
  assert.throws(
    () => keyOfNarUrl('https://elsewhere/nar/x.nar'),
    (e) => isLoftError(e, 'STORAGE_INVALID_KEY'),
  );
  assert.equal(keyOfNarUrl('nar/x.nar.xz'), 'nar/x.nar.xz');
});
