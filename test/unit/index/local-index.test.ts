import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { LocalIndex, SCHEMA_VERSION } from '../../../src/index/index.js';
import { migrate, migrations, type Migration } from '../../../src/index/migrations.js';
import { isLoftError } from '../../../src/util/errors.js';
import { hashPart, storePath, tempDir } from './support.js';

const run = promisify(execFile);

function withDir(fn: (dir: string) => void | Promise<void>) {
  return async () => {
    const dir = tempDir();
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

const A = 's3|http://127.0.0.1:9000|bucket-a';
const B = 's3|http://127.0.0.1:9000|bucket-b';

test(
  'records, looks up, forgets and counts known-present paths',
  withDir((dir) => {
    const ix = LocalIndex.open(join(dir, 'nested', 'deeper', 'index.db'), A);
    const [h1, h2, h3] = [hashPart(1), hashPart(2), hashPart(3)] as [string, string, string];
    assert.equal(ix.countPresent(), 0);
    assert.equal(ix.getPresent(h1), undefined);
    ix.recordPresent({ hashPart: h1, storePath: storePath(h1), narinfoTime: 1000 });
    ix.recordPresent([
      { hashPart: h2, storePath: storePath(h2, 'b'), narinfoTime: 2000 },
      // From a listing: no store path known.
      { hashPart: h3, narinfoTime: 3000 },
    ]);
    assert.deepEqual(ix.getPresent(h1), {
      hashPart: h1,
      storePath: storePath(h1),
      narinfoTime: 1000,
    });
    assert.deepEqual(ix.getPresent(h3), { hashPart: h3, storePath: undefined, narinfoTime: 3000 });
    assert.equal(ix.countPresent(), 3);

    // Refreshing sets the new time; an entry without a store path keeps the known one.
    ix.recordPresent({ hashPart: h1, narinfoTime: 5000 });
    assert.deepEqual(ix.getPresent(h1), {
      hashPart: h1,
      storePath: storePath(h1),
      narinfoTime: 5000,
    });
    // Last writer wins for the time, even if older: the caller states the truth it saw.
    ix.recordPresent({ hashPart: h1, storePath: storePath(h1), narinfoTime: 4000 });
    assert.equal(ix.getPresent(h1)?.narinfoTime, 4000);
    ix.recordPresent({ hashPart: h3, storePath: storePath(h3, 'c'), narinfoTime: 3000 });
    assert.equal(ix.getPresent(h3)?.storePath, storePath(h3, 'c'));

    const many = ix.getPresentMany([h1, hashPart(99), h3, h1]);
    assert.deepEqual([...many.keys()].sort(), [h1, h3].sort());
    assert.equal(many.get(h3)?.narinfoTime, 3000);
    assert.equal(ix.getPresentMany([]).size, 0);

    assert.equal(ix.forgetPresent([h1, hashPart(99)]), 1);
    assert.equal(ix.getPresent(h1), undefined);
    assert.equal(ix.countPresent(), 2);
    assert.equal(ix.forgetPresent([]), 0);
    assert.equal(ix.clearPresent(), 2);
    assert.equal(ix.countPresent(), 0);
    ix.close();
  }),
);

test(
  'per-cache state: get, set, delete, list, clear',
  withDir((dir) => {
    const ix = LocalIndex.open(join(dir, 'index.db'), A);
    assert.equal(ix.getState('initial_scan_done'), undefined);
    ix.setState('initial_scan_done', '1');
    ix.setState('last_prune', '2024-01-01T00:00:00Z');
    ix.setState('initial_scan_done', '2');
    assert.equal(ix.getState('initial_scan_done'), '2');
    assert.deepEqual(ix.allState(), { initial_scan_done: '2', last_prune: '2024-01-01T00:00:00Z' });
    assert.equal(ix.deleteState('initial_scan_done'), true);
    assert.equal(ix.deleteState('initial_scan_done'), false);
    assert.equal(ix.getState('initial_scan_done'), undefined);
    ix.clearState();
    assert.deepEqual(ix.allState(), {});
    ix.close();
  }),
);

test(
  "one cache never sees another's entries or state, in the same file",
  withDir((dir) => {
    const path = join(dir, 'index.db');
    const a = LocalIndex.open(path, A);
    const b = LocalIndex.open(path, B);
    const h = hashPart(7);
    a.recordPresent({ hashPart: h, storePath: storePath(h), narinfoTime: 1 });
    a.setState('initial_scan_done', '1');
    assert.equal(b.getPresent(h), undefined);
    assert.equal(b.getPresentMany([h]).size, 0);
    assert.equal(b.countPresent(), 0);
    assert.equal(b.getState('initial_scan_done'), undefined);
    // Clearing, forgetting and state changes in B leave A alone.
    b.recordPresent({ hashPart: h, narinfoTime: 2 });
    assert.equal(b.clearPresent(), 1);
    assert.equal(b.forgetPresent([h]), 0);
    b.setState('initial_scan_done', '0');
    b.clearState();
    assert.equal(a.getPresent(h)?.narinfoTime, 1);
    assert.equal(a.countPresent(), 1);
    assert.equal(a.getState('initial_scan_done'), '1');
    // A's forget does not touch B's entry for the same path either.
    b.recordPresent({ hashPart: h, narinfoTime: 3 });
    a.forgetPresent([h]);
    assert.equal(b.getPresent(h)?.narinfoTime, 3);
    a.close();
    b.close();
  }),
);

test(
  'entries and state persist across close and reopen, still scoped',
  withDir((dir) => {
    const path = join(dir, 'index.db');
    const h = hashPart(11);
    let ix = LocalIndex.open(path, A);
    ix.recordPresent({ hashPart: h, storePath: storePath(h), narinfoTime: 42 });
    ix.setState('initial_scan_done', '1');
    ix.close();
    ix.close(); // idempotent
    ix = LocalIndex.open(path, A);
    assert.deepEqual(ix.getPresent(h), { hashPart: h, storePath: storePath(h), narinfoTime: 42 });
    assert.equal(ix.getState('initial_scan_done'), '1');
    ix.close();
    const other = LocalIndex.open(path, B);
    assert.equal(other.countPresent(), 0);
    other.close();
  }),
);

test(
  'uses WAL mode and the current schema version',
  withDir((dir) => {
    const ix = LocalIndex.open(join(dir, 'index.db'), A);
    const { db } = ix.internals;
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    assert.equal(SCHEMA_VERSION, migrations.length);
    ix.close();
  }),
);

test(
  'a database at every older schema version is migrated on open, keeping its data',
  withDir((dir) => {
    for (let v = 0; v < SCHEMA_VERSION; v++) {
      const path = join(dir, `v${v}.db`);
      const raw = new Database(path);
      migrate(raw, path, migrations.slice(0, v));
      assert.equal(raw.pragma('user_version', { simple: true }), v);
      raw.close();
      const ix = LocalIndex.open(path, A);
      assert.equal(ix.internals.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
      const h = hashPart(v);
      ix.recordPresent({ hashPart: h, narinfoTime: 1 });
      assert.equal(ix.countPresent(), 1);
      ix.close();
    }
  }),
);

test(
  'migrations apply in order from the stored version, once, and a failing one changes nothing',
  withDir((dir) => {
    const path = join(dir, 'm.db');
    const db = new Database(path);
    const calls: number[] = [];
    const m = (version: number, sql: string): Migration => ({
      version,
      name: `test ${version}`,
      up(d) {
        calls.push(version);
        d.exec(sql);
      },
    });
    const v1 = m(1, 'CREATE TABLE t1 (x INTEGER)');
    const v2 = m(2, 'ALTER TABLE t1 ADD COLUMN y TEXT');
    const v3 = m(3, 'CREATE TABLE t3 (z INTEGER)');
    assert.deepEqual(migrate(db, path, [v1]), { from: 0, to: 1 });
    db.prepare('INSERT INTO t1 (x) VALUES (5)').run();
    assert.deepEqual(migrate(db, path, [v1, v2, v3]), { from: 1, to: 3 });
    assert.deepEqual(calls, [1, 2, 3]);
    assert.deepEqual(db.prepare('SELECT x, y FROM t1').all(), [{ x: 5, y: null }]);
    assert.deepEqual(migrate(db, path, [v1, v2, v3]), { from: 3, to: 3 });
    assert.deepEqual(calls, [1, 2, 3], 'nothing re-run');

    // v4 creates a table, then v5 fails: neither stays, the version stays 3.
    const v4 = m(4, 'CREATE TABLE t4 (a INTEGER)');
    const v5 = m(5, 'THIS IS NOT SQL');
    assert.throws(() => migrate(db, path, [v1, v2, v3, v4, v5]), /syntax error/);
    assert.equal(db.pragma('user_version', { simple: true }), 3);
    const tables = db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .all()
      .map((r) => (r as { name: string }).name);
    assert.deepEqual(tables, ['t1', 't3']);

    // A list out of order is refused before anything runs.
    assert.throws(
      () => migrate(db, path, [v1, v3]),
      (e: unknown) => isLoftError(e, 'INDEX_ARGUMENT') && /version 3 at position 2/.test(e.message),
    );
    db.close();
  }),
);

test(
  'a database from a newer Loft is refused, not touched',
  withDir((dir) => {
    const path = join(dir, 'new.db');
    const raw = new Database(path);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 5}`);
    raw.close();
    assert.throws(
      () => LocalIndex.open(path, A),
      (e: unknown) => {
        assert.ok(isLoftError(e, 'INDEX_TOO_NEW'));
        assert.ok(e.message.includes(path));
        assert.ok(e.message.includes(`schema version ${SCHEMA_VERSION + 5}`));
        assert.match(e.hint ?? '', /upgrade Loft|local_cache_path/);
        return true;
      },
    );
    const again = new Database(path);
    assert.equal(again.pragma('user_version', { simple: true }), SCHEMA_VERSION + 5);
    again.close();
  }),
);

test(
  'a corrupt file gives a clear error naming the path and what to do',
  withDir((dir) => {
    const path = join(dir, 'cache.db');
    writeFileSync(path, 'this is not a database, just some text that is long enough '.repeat(100));
    assert.throws(
      () => LocalIndex.open(path, A),
      (e: unknown) => {
        assert.ok(isLoftError(e, 'INDEX_CORRUPT'), String(e));
        assert.ok(e.message.includes(path), e.message);
        assert.ok(e.hint?.includes(`delete ${path}`), e.hint);
        return true;
      },
    );
  }),
);

test(
  'an uncreatable or unopenable path gives a clear error naming it and what to do',
  withDir((dir) => {
    // The parent "directory" is a file.
    const file = join(dir, 'plain-file');
    writeFileSync(file, 'x');
    const under = join(file, 'sub', 'index.db');
    assert.throws(
      () => LocalIndex.open(under, A),
      (e: unknown) => {
        assert.ok(isLoftError(e, 'INDEX_UNWRITABLE'), String(e));
        assert.ok(e.message.includes(under), e.message);
        assert.match(e.message, /cannot create its directory/);
        assert.match(e.hint ?? '', /local_cache_path/);
        return true;
      },
    );
    // The path is a directory.
    const asDir = join(dir, 'a-directory');
    mkdirSync(asDir);
    assert.throws(
      () => LocalIndex.open(asDir, A),
      (e: unknown) => {
        assert.ok(isLoftError(e, 'INDEX_UNWRITABLE'), String(e));
        assert.ok(e.message.includes(asDir), e.message);
        return true;
      },
    );
  }),
);

test(
  'bad arguments and use after close are refused clearly',
  withDir((dir) => {
    assert.throws(
      () => LocalIndex.open(join(dir, 'x.db'), ''),
      (e: unknown) => isLoftError(e, 'INDEX_ARGUMENT'),
    );
    const ix = LocalIndex.open(join(dir, 'x.db'), A);
    const h = hashPart(1);
    const bad: [unknown, RegExp][] = [
      [{ hashPart: 'tooshort', narinfoTime: 1 }, /not a store path hash part: "tooshort"/],
      [{ hashPart: 'e'.repeat(32), narinfoTime: 1 }, /hash part/],
      [
        { hashPart: h, storePath: storePath(hashPart(2)), narinfoTime: 1 },
        /does not have hash part/,
      ],
      [{ hashPart: h, narinfoTime: -1 }, /milliseconds/],
      [{ hashPart: h, narinfoTime: 1.5 }, /milliseconds/],
    ];
    for (const [entry, msg] of bad) {
      assert.throws(
        () => ix.recordPresent(entry as never),
        (e: unknown) => isLoftError(e, 'INDEX_ARGUMENT') && msg.test(e.message),
      );
    }
    assert.equal(ix.getPresentMany(['nope', "' OR 1=1 --"]).size, 0);
    assert.equal(ix.countPresent(), 0, 'nothing half-recorded');
    // A batch with one bad entry records none of it.
    assert.throws(() =>
      ix.recordPresent([
        { hashPart: h, narinfoTime: 1 },
        { hashPart: 'bad', narinfoTime: 1 },
      ]),
    );
    assert.equal(ix.countPresent(), 0);
    ix.close();
    assert.throws(
      () => ix.countPresent(),
      (e: unknown) => isLoftError(e, 'INDEX_CLOSED'),
    );
  }),
);

test(
  'a writer blocked past the busy timeout gets INDEX_BUSY naming the file',
  withDir((dir) => {
    const path = join(dir, 'busy.db');
    const ix = LocalIndex.open(path, A, { busyTimeoutMs: 100 });
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    try {
      const started = Date.now();
      assert.throws(
        () => ix.recordPresent({ hashPart: hashPart(1), narinfoTime: 1 }),
        (e: unknown) => {
          assert.ok(isLoftError(e, 'INDEX_BUSY'), String(e));
          assert.ok(e.message.includes(path));
          return true;
        },
      );
      assert.ok(Date.now() - started >= 90, 'it waited for the lock first');
      // Readers are not blocked by a writer in WAL mode.
      assert.equal(ix.countPresent(), 0);
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    ix.recordPresent({ hashPart: hashPart(1), narinfoTime: 1 });
    assert.equal(ix.countPresent(), 1);
    ix.close();
  }),
);

test(
  'two processes write to the same file at once without losing anything',
  withDir(async (dir) => {
    const path = join(dir, 'shared.db');
    const writer = fileURLToPath(new URL('./concurrent-writer.js', import.meta.url));
    const N = 600;
    // Two writers on one cache and one on another, all at the same time.
    const results = await Promise.all([
      run(process.execPath, [writer, path, A, '1', String(N)]),
      run(process.execPath, [writer, path, A, '2', String(N)]),
      run(process.execPath, [writer, path, B, '3', String(N)]),
    ]);
    for (const r of results) assert.equal(r.stdout, 'ok');
    const a = LocalIndex.open(path, A);
    const b = LocalIndex.open(path, B);
    assert.equal(a.countPresent(), 2 * N);
    assert.equal(b.countPresent(), N);
    assert.equal(a.getState('progress-1'), String(N));
    assert.equal(a.getState('progress-2'), String(N));
    assert.equal(a.getState('progress-3'), undefined);
    assert.equal(b.getState('progress-3'), String(N));
    const h = hashPart(N - 1, 2);
    assert.deepEqual(a.getPresent(h), {
      hashPart: h,
      storePath: storePath(h),
      narinfoTime: 1000 + N - 1,
    });
    a.close();
    b.close();
  }),
);

test(
  '100k paths: recorded in pages, looked up in one call, forgotten in bulk',
  withDir((dir) => {
    const ix = LocalIndex.open(join(dir, 'big.db'), A);
    const N = 100_000;
    let t = performance.now();
    for (let start = 0; start < N; start += 5000) {
      ix.recordPresent(
        Array.from({ length: 5000 }, (_, j) => {
          const h = hashPart(start + j);
          return { hashPart: h, storePath: storePath(h), narinfoTime: start + j };
        }),
      );
    }
    const recordMs = performance.now() - t;
    assert.equal(ix.countPresent(), N);
    // Look up all of them plus 50k that are absent.
    const query = [
      ...Array.from({ length: N }, (_, i) => hashPart(i)),
      ...Array.from({ length: N / 2 }, (_, i) => hashPart(i, 5)),
    ];
    t = performance.now();
    const found = ix.getPresentMany(query);
    const lookupMs = performance.now() - t;
    assert.equal(found.size, N);
    assert.equal(found.get(hashPart(12_345))?.narinfoTime, 12_345);
    assert.equal(found.has(hashPart(1, 5)), false);
    t = performance.now();
    assert.equal(ix.forgetPresent(query.slice(0, N / 2)), N / 2);
    const forgetMs = performance.now() - t;
    assert.equal(ix.countPresent(), N / 2);
    console.log(
      `100k: record ${recordMs.toFixed(0)} ms (20 pages), lookup of 150k ${lookupMs.toFixed(0)} ms, ` +
        `forget 50k ${forgetMs.toFixed(0)} ms (noisy shared machine)`,
    );
    ix.close();
  }),
);

test(
  'confirmPresent labels existing entries with a prune mark, and an entry recorded again without one loses it',
  withDir((dir) => {
    const ix = LocalIndex.open(join(dir, 'index.db'), A);
    const other = LocalIndex.open(join(dir, 'index.db'), B);
    const [h1, h2, h3] = [hashPart(1), hashPart(2), hashPart(3)] as [string, string, string];
    ix.recordPresent([
      { hashPart: h1, narinfoTime: 1000 },
      { hashPart: h2, narinfoTime: 2000 },
    ]);
    other.recordPresent({ hashPart: h1, narinfoTime: 1000 });
    assert.equal(ix.getPresent(h1)?.pruneMark, undefined, 'no mark until confirmed');
    // h3 is not an entry: confirming it creates nothing.
    assert.equal(ix.confirmPresent([h1, h2, h3], 'mark-1'), 2);
    assert.equal(ix.getPresent(h3), undefined);
    assert.deepEqual(
      [...ix.getPresentMany([h1, h2]).values()].map((e) => e.pruneMark),
      ['mark-1', 'mark-1'],
    );
    assert.equal(other.getPresent(h1)?.pruneMark, undefined, 'another cache is not touched');
    // Recorded again (a listing, a plan's answer): news from elsewhere, no longer confirmed.
    ix.recordPresent({ hashPart: h2, narinfoTime: 3000 });
    assert.equal(ix.getPresent(h2)?.pruneMark, undefined);
    assert.equal(ix.getPresent(h1)?.pruneMark, 'mark-1');
    assert.throws(() => ix.confirmPresent([h1], ''), /prune mark must be a non-empty string/);
    ix.close();
    other.close();
  }),
);

test(
  'path info recorded with a present path is read back with its presence, kept when the row is written again without one, and attached only to present rows',
  withDir((dir) => {
    const ix = LocalIndex.open(join(dir, 'index.db'), A);
    const [h1, h2, h3] = [hashPart(1), hashPart(2), hashPart(3)] as [string, string, string];
    ix.recordPresent([
      { hashPart: h1, storePath: storePath(h1), narinfoTime: 1000, pathInfo: '{"one":1}' },
      { hashPart: h2, storePath: storePath(h2), narinfoTime: 2000 },
    ]);
    assert.deepEqual(
      [...ix.getPresentWithPathInfo([h1, h2, h3])],
      [[h1, { hashPart: h1, storePath: storePath(h1), narinfoTime: 1000, pathInfo: '{"one":1}' }]],
    );
    // Written again without path info (a listing, a refresh): the recorded one stays.
    ix.recordPresent({ hashPart: h1, narinfoTime: 3000 });
    assert.equal(ix.getPresentWithPathInfo([h1]).get(h1)?.pathInfo, '{"one":1}');
    assert.equal(ix.getPresentWithPathInfo([h1]).get(h1)?.narinfoTime, 3000);
    ix.confirmPresent([h1], 'mark-1');
    assert.equal(ix.getPresentWithPathInfo([h1]).get(h1)?.pruneMark, 'mark-1');
    // Attached to present rows only: h3 is not in the cache, so no row appears for it.
    assert.equal(
      ix.recordPathInfos([
        { hashPart: h2, pathInfo: '{"two":2}' },
        { hashPart: h3, pathInfo: '{"three":3}' },
      ]),
      1,
    );
    assert.equal(ix.getPresentWithPathInfo([h2]).get(h2)?.pathInfo, '{"two":2}');
    assert.equal(ix.getPresent(h3), undefined);
    assert.equal(ix.getPresentWithPathInfo([h3]).size, 0);
    // Another cache in the same file sees none of it.
    const b = LocalIndex.open(join(dir, 'index.db'), B);
    assert.equal(b.getPresentWithPathInfo([h1, h2]).size, 0);
    b.close();
    ix.close();
  }),
);
