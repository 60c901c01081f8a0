import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pathFilter, storePathName } from '../../../src/upload/filter.js';
import { isLoftError } from '../../../src/util/errors.js';

const p = (name: string) => `/nix/store/${'a'.repeat(32)}-${name}`;

test('storePathName drops the store dir, the hash and the dash', () => {
  assert.equal(storePathName(p('hello-2.12')), 'hello-2.12');
  assert.equal(storePathName(p('foo.drv')), 'foo.drv');
});

test('no patterns: no filter at all', () => {
  assert.equal(pathFilter({ include: [], exclude: [] }), undefined);
});

test('exclude patterns match anywhere in the name, never in the hash', () => {
  const f = pathFilter({ include: [], exclude: ['-source$', '^secret'] })!;
  assert.equal(f.excludes(p('nixpkgs-source')), true);
  assert.equal(f.excludes(p('secret-config')), true);
  assert.equal(f.excludes(p('source-highlight')), false);
  assert.equal(f.excludes(p('my-secret')), false, '^ anchors at the name, after the hash');
  // The hash part is not part of the name: 'a' occurs in the hash only.
  assert.equal(pathFilter({ include: [], exclude: ['a'] })!.excludes(p('xyz')), false);
});

test('include patterns keep only matching names, and exclude still wins over include', () => {
  const f = pathFilter({ include: ['^myapp'], exclude: ['-dev$'] })!;
  assert.equal(f.excludes(p('myapp-1.0')), false);
  assert.equal(f.excludes(p('glibc-2.35')), true, 'not included');
  assert.equal(f.excludes(p('myapp-1.0-dev')), true, 'included but excluded');
});

test('a bad pattern is a config error naming the key and the pattern', () => {
  assert.throws(
    () => pathFilter({ include: [], exclude: ['ok', '(x'] }),
    (e: unknown) =>
      isLoftError(e, 'FILTER_BAD_PATTERN') &&
      e.kind === 'config' &&
      e.message.startsWith('exclude_patterns: "(x"'),
  );
});
