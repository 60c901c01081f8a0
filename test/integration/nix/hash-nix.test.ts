/** Hash forms and store path names against Nix 2.8's own conversions. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runNix, salt } from '../../support/nix.js';
import { Hash, HASH_SIZES, type HashAlgo } from '../../../src/nix/hash.js';
import { isStorePath, parseStorePath } from '../../../src/nix/store-path.js';
import { runStatus, tempDir } from './helpers.js';

let work: string;
before(() => {
  work = tempDir('hash');
});
after(() => rmSync(work, { recursive: true, force: true }));

test('nix32, SRI and hex forms equal what nix hash to-* prints, for every type', async () => {
  for (const algo of Object.keys(HASH_SIZES) as HashAlgo[]) {
    const digests = Array.from({ length: 5 }, () => randomBytes(HASH_SIZES[algo]));
    const hex = digests.map((d) => d.toString('hex'));
    const b32 = (await runNix('nix', ['hash', 'to-base32', '--type', algo, ...hex]))
      .trim()
      .split('\n');
    const sri = (await runNix('nix', ['hash', 'to-sri', '--type', algo, ...hex]))
      .trim()
      .split('\n');
    const back = (await runNix('nix', ['hash', 'to-base16', ...sri])).trim().split('\n');
    digests.forEach((d, i) => {
      const h = new Hash(algo, d);
      assert.equal(h.toNix32(), b32[i], algo);
      assert.equal(h.toSri(), sri[i], algo);
      assert.equal(h.toHex(), back[i], algo);
      assert.ok(Hash.parse(`${algo}:${b32[i]}`).equals(h));
      assert.ok(Hash.parse(sri[i]!).equals(h));
    });
  }
});

test('store path names: what nix-store --add accepts, we parse; what it refuses, we refuse', async () => {
  const s = salt();
  const dir = join(work, 'names');
  mkdirSync(dir);
  // Nix 2.8 accepts leading dots (".foo"), and every allowed character.
  for (const name of [`.dot-${s}`, `a+b=c?d_e.f-${s}`]) {
    const f = join(dir, name);
    writeFileSync(f, name);
    const path = (await runNix('nix-store', ['--add', f])).trim();
    const p = parseStorePath(path);
    assert.equal(p.name, name);
    assert.equal(p.path, path);
  }
  for (const name of [`sp ace-${s}`, `at@-${s}`, `uml\u00e4ut-${s}`]) {
    const f = join(dir, name);
    writeFileSync(f, name);
    const r = await runStatus('nix-store', ['--add', f]);
    assert.notEqual(r.code, 0, name);
    assert.match(r.stderr, /illegal character/);
    assert.equal(isStorePath(`/nix/store/${'0'.repeat(32)}-${name}`), false, name);
  }
});
