import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  INBOX_HEADER,
  countInbox,
  inboxDirFor,
  parseInboxText,
  readInbox,
  removeInboxFile,
  writeInboxFile,
} from '../../../src/watch/inbox.js';
import { isLoftError } from '../../../src/util/errors.js';
import { giveToUnprivileged, isRoot, runUnprivileged } from '../../support/unprivileged.js';

const P = (c: string, n = 'x') => `/nix/store/${c.repeat(32)}-${n}`;

function withDir(fn: (dir: string) => Promise<void> | void) {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loft-inbox-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test('the inbox sits next to the index file', () => {
  assert.equal(inboxDirFor('/var/lib/loft/cache.db'), '/var/lib/loft/inbox');
});

test(
  'a hook file is written whole, world-readable whatever the umask, and read back in order',
  withDir(async (root) => {
    const dir = join(root, 'state', 'inbox'); // created on demand
    const old = process.umask(0o077);
    let f1: string;
    let f2: string;
    try {
      f1 = writeInboxFile(dir, [P('a'), P('b')], { now: 1000 });
      f2 = writeInboxFile(dir, [P('c')], { now: 2000 });
    } finally {
      process.umask(old);
    }
    assert.equal(statSync(f1).mode & 0o777, 0o644);
    assert.ok(readFileSync(f1, 'utf8').startsWith(`${INBOX_HEADER}\n`));
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.startsWith('.')),
      [],
      'no temp file left',
    );
    const files = await readInbox(dir);
    assert.deepEqual(
      files.map((f) => [f.file, f.paths, f.bad]),
      [
        [f1, [P('a'), P('b')], []],
        [f2, [P('c')], []],
      ],
    );
    assert.equal(await countInbox(dir), 2);
    await removeInboxFile(f1);
    await removeInboxFile(f1); // twice is fine
    assert.equal(await countInbox(dir), 1);
  }),
);

test(
  'temp files of a hook still writing are ignored; stale ones are swept',
  withDir(async (dir) => {
    writeFileSync(join(dir, '.tmp-1-2-3.paths'), `${P('a')}\n`);
    writeFileSync(join(dir, '.tmp-9-9-9.paths'), `${P('b')}\n`);
    const old = (Date.now() - 2 * 3_600_000) / 1000;
    utimesSync(join(dir, '.tmp-9-9-9.paths'), old, old);
    assert.deepEqual(await readInbox(dir), []);
    assert.deepEqual(readdirSync(dir), ['.tmp-1-2-3.paths']);
  }),
);

test('bad lines are reported, not silently taken', () => {
  const r = parseInboxText(
    `${INBOX_HEADER}\n${P('a')}\n\n  ${P('a')}  \nnot a path\n/nix/store/../etc/${'a'.repeat(32)}-x\n`,
  );
  assert.deepEqual(r.paths, [P('a')]);
  assert.equal(r.bad.length, 2);
});

test(
  'the hook refuses non-store paths and reports an unwritable inbox clearly',
  withDir(async (dir) => {
    assert.throws(
      () => writeInboxFile(dir, ['/etc/passwd']),
      (e: unknown) => isLoftError(e, 'INBOX_BAD_PATH'),
    );
    // Root writes anywhere: then the hook runs as an unprivileged user.
    giveToUnprivileged(dir);
    chmodSync(dir, 0o500);
    const inbox = join(dir, 'inbox');
    if (!isRoot()) {
      assert.throws(
        () => writeInboxFile(inbox, [P('a')]),
        (e: unknown) => isLoftError(e, 'INBOX_UNWRITABLE'),
      );
      return;
    }
    const code = await runUnprivileged<string | null>(
      { m: new URL('../../../src/watch/inbox.js', import.meta.url).href },
      `try { m.writeInboxFile(${JSON.stringify(inbox)}, [${JSON.stringify(P('a'))}]); return null; }
       catch (e) { return e.code; }`,
    );
    assert.equal(code, 'INBOX_UNWRITABLE');
  }),
);

test('a missing inbox reads as empty', async () => {
  assert.deepEqual(await readInbox('/nonexistent/loft/inbox'), []);
  assert.equal(await countInbox('/nonexistent/loft/inbox'), 0);
});
