import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveStorePath } from '../../../src/store/resolve-path.js';
import { isLoftError } from '../../../src/util/errors.js';

// A stand-in store directory with two "store paths", so the rules are tested without
// touching /nix/store.
const root = mkdtempSync(join(tmpdir(), 'loft-resolve-'));
const store = join(root, 'store');
const A = `${store}/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo`;
const B = `${store}/5xd714cbfnkz02h2vbsj4fm03x3f15nf-baz`;
mkdirSync(`${A}/bin`, { recursive: true });
writeFileSync(`${A}/bin/tool`, '');
mkdirSync(B, { recursive: true });
symlinkSync(`${B}`, `${A}/bin/link-to-b`);
const work = join(root, 'work');
mkdirSync(work);
symlinkSync(A, join(work, 'result'));
symlinkSync('result', join(work, 'result-2')); // a chain, relative
symlinkSync(join(root, 'profiles', 'p-1-link'), join(work, 'profile'));
mkdirSync(join(root, 'profiles'));
symlinkSync(B, join(root, 'profiles', 'p-1-link'));
symlinkSync(join(root, 'outside'), join(work, 'dangling'));
symlinkSync(work, join(root, 'work-link')); // a symlinked directory on the way
symlinkSync(store, join(root, 'store-link')); // the store reached through a link
writeFileSync(join(work, 'plain'), '');
test.after(() => rmSync(root, { recursive: true, force: true }));

test('store paths, sub-paths and symlinks into the store resolve to the store path', async () => {
  const cases: [string, string][] = [
    [A, A],
    [`${A}/bin/tool`, A],
    [`${A}/bin/link-to-b`, A], // inside the store already: not followed, as Nix does
    ['./result', A],
    ['result-2', A],
    ['profile', B],
    [join(root, 'work-link', 'result'), A],
    [join(root, 'store-link', 'vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo', 'bin'), A],
  ];
  for (const [input, want] of cases) {
    assert.equal(await resolveStorePath(input, store, work), want, input);
  }
});

test('paths outside the store are refused with the resolved path and a hint', async () => {
  for (const input of ['plain', root, store, `${store}/`]) {
    await assert.rejects(resolveStorePath(input, store, work), (e: unknown) => {
      assert.ok(isLoftError(e, 'PATH_OUTSIDE_STORE'), `${input}: ${String(e)}`);
      assert.match(e.message, /is not in the Nix store/);
      assert.match(e.hint ?? '', /\.\/result/);
      return true;
    });
  }
});

test('missing paths and dangling links say the path does not exist', async () => {
  for (const input of ['nope', 'dangling']) {
    await assert.rejects(resolveStorePath(input, store, work), (e: unknown) =>
      isLoftError(e, 'PATH_MISSING'),
    );
  }
});

test('a malformed name inside the store is an invalid store path', async () => {
  mkdirSync(`${store}/not-a-store-path`);
  await assert.rejects(resolveStorePath(`${store}/not-a-store-path`, store, work), (e: unknown) =>
    isLoftError(e, 'STORE_PATH_INVALID'),
  );
});
