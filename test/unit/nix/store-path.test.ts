import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  isStorePath,
  parseStorePath,
  parseStorePathBasename,
  storePathBasename,
  storePathHashPart,
} from '../../../src/nix/store-path.js';
import { InvalidStorePathError, type StorePathRule } from '../../../src/nix/errors.js';

const H = 'vxjiwkjkn7x4079qvh1jkl5pn05j2aw0';

test('parses the documented example', () => {
  const p = parseStorePath(`/nix/store/${H}-foo`);
  assert.deepEqual(p, {
    storeDir: '/nix/store',
    hashPart: H,
    name: 'foo',
    basename: `${H}-foo`,
    path: `/nix/store/${H}-foo`,
  });
  assert.equal(storePathBasename(p.path), `${H}-foo`);
  assert.equal(storePathHashPart(p.path), H);
  assert.equal(parseStorePathBasename(`${H}-foo`).path, p.path);
});

test('the store directory is configurable', () => {
  const p = parseStorePath(`/tmp/x/store/${H}-foo`, '/tmp/x/store');
  assert.equal(p.storeDir, '/tmp/x/store');
  assert.equal(p.path, `/tmp/x/store/${H}-foo`);
  assert.equal(parseStorePathBasename(`${H}-foo`, '/opt/s').path, `/opt/s/${H}-foo`);
  assert.equal(isStorePath(`/nix/store/${H}-foo`, '/tmp/x/store'), false);
});

test('names use every allowed character and may be 211 long; dots-first names like .gitignore are valid', () => {
  for (const name of [
    'a',
    'A-Z.0+9_?=',
    'x'.repeat(211),
    '.foo',
    '..foo',
    '.gitignore',
    'foo-.',
    'a..b',
  ]) {
    assert.equal(parseStorePath(`/nix/store/${H}-${name}`).name, name, name);
  }
});

function rejects(path: string, rule: StorePathRule, storeDir?: string) {
  assert.throws(
    () => parseStorePath(path, storeDir),
    (e: Error) =>
      e instanceof InvalidStorePathError &&
      e.code === 'STORE_PATH_INVALID' &&
      e.rule === rule &&
      e.value === (rule === 'store-dir' ? storeDir : path) &&
      e.message.includes(JSON.stringify(rule === 'store-dir' ? storeDir : path).slice(0, 40)) &&
      typeof e.hint === 'string',
    `${path} should break ${rule}`,
  );
  assert.equal(isStorePath(path, storeDir), false);
}

test('each rule is enforced and named', () => {
  rejects(`/nix/storex/${H}-foo`, 'not-in-store');
  rejects(`/nix/${H}-foo`, 'not-in-store');
  rejects(`nix/store/${H}-foo`, 'not-in-store');
  rejects(`/nix/store/${H}-foo/bin/sh`, 'not-in-store');
  rejects(`/nix/store/${H}-foo/`, 'not-in-store');
  rejects(`/nix/store/${H}`, 'too-short');
  rejects(`/nix/store/`, 'too-short');
  rejects(`/nix/store/${H.slice(0, 31)}e-foo`, 'hash-part');
  rejects(`/nix/store/${H.slice(0, 31)}T-foo`, 'hash-part');
  rejects(`/nix/store/${H}_foo`, 'missing-dash');
  rejects(`/nix/store/${H}-`, 'name-empty');
  rejects(`/nix/store/${H}-${'x'.repeat(212)}`, 'name-too-long');
  rejects(`/nix/store/${H}-.`, 'name-dots');
  rejects(`/nix/store/${H}-..`, 'name-dots');
  rejects(`/nix/store/${H}-.-foo`, 'name-dots');
  rejects(`/nix/store/${H}-..-foo`, 'name-dots');
  for (const c of [' ', '/', '~', 'é', '\n', ':', '@', '!']) {
    if (c === '/') continue;
    rejects(`/nix/store/${H}-a${c}b`, 'name-charset');
  }
  rejects(`/nix/store/${H}-foo`, 'store-dir', 'nix/store');
  rejects(`/nix/store/${H}-foo`, 'store-dir', '/nix/store/');
  rejects(`/nix/store/${H}-foo`, 'store-dir', '/nix/../store');
});

test('the message names the rule in words', () => {
  assert.throws(() => parseStorePath(`/nix/store/${H}-a b`), /the name contains " ", allowed are/);
  assert.throws(
    () => parseStorePath(`/nix/store/${H}-${'x'.repeat(300)}`),
    /300 characters, more than 211/,
  );
  assert.throws(
    () => parseStorePath(`/home/me/${H}-foo`),
    /not in the store directory \/nix\/store/,
  );
});
