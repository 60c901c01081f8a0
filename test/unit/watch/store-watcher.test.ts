import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StoreWatcher, lockedPathName } from '../../../src/watch/store-watcher.js';
import { isLoftError } from '../../../src/util/errors.js';

const H = (c: string) => c.repeat(32);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('lock names map to store path names; derivation locks and other files do not', () => {
  assert.equal(lockedPathName(`${H('a')}-hello-2.12.lock`), `${H('a')}-hello-2.12`);
  assert.equal(lockedPathName(`${H('a')}-hello.drv.lock`), undefined);
  assert.equal(lockedPathName(`${H('a')}-hello`), undefined);
  assert.equal(lockedPathName('.links'), undefined);
  assert.equal(lockedPathName(`${H('e')}-bad-alphabet.lock`), undefined);
  assert.equal(lockedPathName('short-x.lock'), undefined);
});

function withStore(fn: (dir: string) => Promise<void>) {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loft-watch-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test(
  'a released lock is reported (batched); creating a path, its lock, or a .drv lock is not',
  withStore(async (dir) => {
    const seen: string[][] = [];
    const w = new StoreWatcher({
      dir,
      storeDir: '/nix/store',
      onPaths: (p) => seen.push(p.sort()),
      onError: (e) => assert.fail(e),
      debounceMs: 50,
    });
    w.start();
    try {
      const a = `${H('a')}-a`;
      const b = `${H('b')}-b`;
      const d = `${H('d')}-x.drv`;
      // Nix's order: lock, then the path's directory (not yet valid), then unlock.
      for (const n of [a, b, d]) writeFileSync(join(dir, `${n}.lock`), '');
      mkdirSync(join(dir, a));
      mkdirSync(join(dir, `${H('c')}-never-locked`));
      await sleep(200);
      assert.deepEqual(seen, [], 'nothing is reported while locks are held or for directories');
      unlinkSync(join(dir, `${a}.lock`));
      unlinkSync(join(dir, `${b}.lock`));
      unlinkSync(join(dir, `${d}.lock`));
      await sleep(300);
      assert.deepEqual(seen, [[`/nix/store/${a}`, `/nix/store/${b}`]]);
      assert.equal(w.events, 2);
    } finally {
      w.close();
    }
  }),
);

test(
  'close() reports locks released just before it (nothing seen is dropped)',
  withStore(async (dir) => {
    const seen: string[] = [];
    const w = new StoreWatcher({
      dir,
      storeDir: '/nix/store',
      onPaths: (p) => seen.push(...p),
      onError: (e) => assert.fail(e),
      debounceMs: 10_000,
    });
    w.start();
    const a = `${H('f')}-late`;
    writeFileSync(join(dir, `${a}.lock`), '');
    unlinkSync(join(dir, `${a}.lock`));
    await sleep(100);
    assert.deepEqual(seen, []);
    w.close();
    assert.deepEqual(seen, [`/nix/store/${a}`]);
  }),
);

test('a missing store directory is a clear WATCH_FAILED error', () => {
  const w = new StoreWatcher({
    dir: '/nonexistent/loft/store',
    storeDir: '/nix/store',
    onPaths: () => {},
    onError: () => {},
  });
  assert.throws(
    () => w.start(),
    (e: unknown) =>
      isLoftError(e, 'WATCH_FAILED') &&
      e.message.includes('/nonexistent/loft/store') &&
      (e.hint ?? '').includes('real_store_dir'),
  );
});
