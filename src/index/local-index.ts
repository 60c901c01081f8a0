/**
 * The local index: a SQLite file (at `local_cache_path`) that remembers which store paths
 * a cache is known to hold, and small per-cache state, so pushes need not ask the bucket
 * about every path each time. Every row belongs to one cache, identified by the storage
 * layer's opaque id (endpoint + bucket): entries recorded for one cache are never visible
 * through another, so switching endpoint or bucket cannot make the index lie.
 *
 * Several processes may use the file at once (the service and the post-build hook): WAL
 * mode lets readers run beside one writer, and writers wait up to the busy timeout.
 * Calls are synchronous (better-sqlite3); each is one short statement or transaction.
 * `synchronous = NORMAL`: a committed write survives a crash of the process; a power
 * loss may drop the last few, which only makes Loft check those paths again.
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { HASH_PART_LENGTH, isHashPart } from '../nix/store-path.js';
import {
  IndexArgumentError,
  IndexBusyError,
  IndexClosedError,
  IndexCorruptError,
  IndexUnwritableError,
} from './errors.js';
import { migrate } from './migrations.js';

/** A store path the cache is known to hold. */
export interface PresentPath {
  /** The 32 nix32 characters of the store path (the narinfo's key). */
  hashPart: string;
  /** The full store path, when known (a bucket listing gives only the hash part). */
  storePath?: string | undefined;
  /**
   * When the narinfo was written or last refreshed, in ms since the epoch; or its
   * LastModified when learned from a listing. Pruning's refresh-on-use reads this.
   */
  narinfoTime: number;
  /**
   * The bucket's prune mark read by the push that last confirmed this path under its lease
   * (src/storage/prune-mark.ts); undefined when the entry came from elsewhere.
   */
  pruneMark?: string | undefined;
  /**
   * The local store's path info of `storePath` (JSON text), kept unless a later write
   * brings another. Only getPresentWithPathInfo() reads it back.
   */
  pathInfo?: string | undefined;
}

export interface LocalIndexOptions {
  /** How long a write waits for another process's lock before failing. Default 10 s. */
  busyTimeoutMs?: number;
}

interface Row {
  hash_part: string;
  store_path: string | null;
  narinfo_time: number;
  prune_mark: string | null;
}

function toPresent(r: Row): PresentPath {
  return {
    hashPart: r.hash_part,
    storePath: r.store_path ?? undefined,
    narinfoTime: r.narinfo_time,
    ...(r.prune_mark === null ? {} : { pruneMark: r.prune_mark }),
  };
}

function checkHashPart(h: unknown): string {
  if (typeof h !== 'string' || !isHashPart(h)) {
    throw new IndexArgumentError(
      `not a store path hash part: ${JSON.stringify(h)} (expected ${HASH_PART_LENGTH} nix32 characters)`,
    );
  }
  return h;
}

function checkEntry(e: PresentPath): PresentPath {
  checkHashPart(e.hashPart);
  if (e.storePath !== undefined) {
    const base = e.storePath.slice(e.storePath.lastIndexOf('/') + 1);
    if (!e.storePath.startsWith('/') || !base.startsWith(`${e.hashPart}-`)) {
      throw new IndexArgumentError(
        `store path ${JSON.stringify(e.storePath)} does not have hash part ${e.hashPart}`,
      );
    }
  }
  if (!Number.isSafeInteger(e.narinfoTime) || e.narinfoTime < 0) {
    throw new IndexArgumentError(
      `narinfoTime for ${e.hashPart} must be whole milliseconds since the epoch, got ${String(e.narinfoTime)}`,
    );
  }
  return e;
}

/** Map SQLite's failures to errors that name the file and say what to do. */
export function translateSqliteError(path: string, e: unknown): unknown {
  if (!(e instanceof Database.SqliteError)) return e;
  const code = e.code;
  if (
    code === 'SQLITE_BUSY' ||
    code.startsWith('SQLITE_BUSY_') ||
    code.startsWith('SQLITE_LOCKED')
  ) {
    return new IndexBusyError(path, e);
  }
  if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
    return new IndexCorruptError(path, e.message, e);
  }
  if (
    code.startsWith('SQLITE_READONLY') ||
    code.startsWith('SQLITE_CANTOPEN') ||
    code.startsWith('SQLITE_IOERR') ||
    code === 'SQLITE_FULL' ||
    code === 'SQLITE_PERM' ||
    code === 'SQLITE_AUTH'
  ) {
    return new IndexUnwritableError(path, e.message, e);
  }
  return e;
}

export class LocalIndex {
  private db: Database.Database | undefined;
  private readonly key: number;
  private readonly stmts: ReturnType<LocalIndex['prepare']>;

  private constructor(
    /** The database file, as an absolute path. */
    readonly path: string,
    /** The cache this handle sees. */
    readonly cacheId: string,
    db: Database.Database,
  ) {
    this.db = db;
    this.key = this.resolveCache();
    this.stmts = this.prepare();
  }

  /**
   * Open (creating the file and its directories if needed) the index at `dbPath`, seeing
   * only the entries of `cacheId`. Throws INDEX_UNWRITABLE, INDEX_CORRUPT or
   * INDEX_TOO_NEW with the path and what to do.
   */
  static open(dbPath: string, cacheId: string, opts: LocalIndexOptions = {}): LocalIndex {
    if (typeof cacheId !== 'string' || cacheId.length === 0) {
      throw new IndexArgumentError(
        `cache id must be a non-empty string, got ${JSON.stringify(cacheId)}`,
      );
    }
    const path = resolve(dbPath);
    try {
      mkdirSync(dirname(path), { recursive: true });
    } catch (e) {
      throw new IndexUnwritableError(
        path,
        `cannot create its directory ${dirname(path)}: ${(e as Error).message}`,
        e,
      );
    }
    let db: Database.Database | undefined;
    try {
      db = new Database(path, { timeout: opts.busyTimeoutMs ?? 10_000 });
      // The first statements read the file: a non-database fails here, not later.
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      migrate(db, path);
      return new LocalIndex(path, cacheId, db);
    } catch (e) {
      db?.close();
      throw translateSqliteError(path, e);
    }
  }

  private get conn(): Database.Database {
    if (this.db === undefined) throw new IndexClosedError(this.path);
    return this.db;
  }

  private guard<T>(fn: () => T): T {
    void this.conn; // throws INDEX_CLOSED after close()
    try {
      return fn();
    } catch (e) {
      // better-sqlite3's transaction() has already rolled back by the time we see this.
      throw translateSqliteError(this.path, e);
    }
  }

  private resolveCache(): number {
    const db = this.conn;
    db.prepare(
      'INSERT INTO caches (cache_id, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING',
    ).run(this.cacheId, Date.now());
    const row = db.prepare('SELECT id FROM caches WHERE cache_id = ?').get(this.cacheId) as
      { id: number } | undefined;
    if (row === undefined) throw new Error(`cache row for ${this.cacheId} vanished`);
    return row.id;
  }

  private prepare() {
    const db = this.conn;
    // Sets of hash parts travel as one JSON array parameter: one statement for any count
    // (no 32k-variable limit), and SQLite probes the primary key for each.
    return {
      // A row written again without a mark loses its old one: it is news from elsewhere.
      upsert: db.prepare(
        `INSERT INTO present_paths (cache, hash_part, store_path, narinfo_time, prune_mark, path_info)
         VALUES (@cache, @hashPart, @storePath, @narinfoTime, @pruneMark, @pathInfo)
         ON CONFLICT (cache, hash_part) DO UPDATE SET
           store_path = COALESCE(excluded.store_path, store_path),
           narinfo_time = excluded.narinfo_time,
           prune_mark = excluded.prune_mark,
           path_info = COALESCE(excluded.path_info, path_info)`,
      ),
      // Rows as arrays: at 10k+ rows, building an object per row costs more than the query.
      getPathInfos: db
        .prepare(
          `SELECT hash_part, store_path, narinfo_time, prune_mark, path_info FROM present_paths
           WHERE cache = ? AND path_info IS NOT NULL
             AND hash_part IN (SELECT value FROM json_each(?))`,
        )
        .raw(true),
      setPathInfo: db.prepare(
        'UPDATE present_paths SET path_info = ? WHERE cache = ? AND hash_part = ?',
      ),
      get: db.prepare(
        'SELECT hash_part, store_path, narinfo_time, prune_mark FROM present_paths WHERE cache = ? AND hash_part = ?',
      ),
      // IN (subquery), not a join: SQLite may put json_each inside a join's loop and
      // re-read the whole array per row (seen here: minutes for 100k).
      getMany: db.prepare(
        `SELECT hash_part, store_path, narinfo_time, prune_mark FROM present_paths
         WHERE cache = ? AND hash_part IN (SELECT value FROM json_each(?))`,
      ),
      confirmMany: db.prepare(
        `UPDATE present_paths SET prune_mark = ?
         WHERE cache = ? AND hash_part IN (SELECT value FROM json_each(?))`,
      ),
      forgetMany: db.prepare(
        'DELETE FROM present_paths WHERE cache = ? AND hash_part IN (SELECT value FROM json_each(?))',
      ),
      clear: db.prepare('DELETE FROM present_paths WHERE cache = ?'),
      count: db.prepare('SELECT count(*) AS n FROM present_paths WHERE cache = ?'),
      getState: db.prepare('SELECT value FROM cache_state WHERE cache = ? AND key = ?'),
      setState: db.prepare(
        `INSERT INTO cache_state (cache, key, value) VALUES (?, ?, ?)
         ON CONFLICT (cache, key) DO UPDATE SET value = excluded.value`,
      ),
      deleteState: db.prepare('DELETE FROM cache_state WHERE cache = ? AND key = ?'),
      clearState: db.prepare('DELETE FROM cache_state WHERE cache = ?'),
      allState: db.prepare('SELECT key, value FROM cache_state WHERE cache = ? ORDER BY key'),
    };
  }

  /**
   * Record paths as present in the cache (insert, or update the time; a known store path
   * is kept when an entry comes without one). Contract: call this only after the path's
   * narinfo write to the bucket succeeded (or a listing showed it), never before, so the
   * index never claims a path the cache does not have. One transaction per call: pass
   * listings in pages (a few thousand) rather than all at once, to keep each call short.
   */
  recordPresent(entries: PresentPath | readonly PresentPath[]): void {
    const list = Array.isArray(entries) ? entries : [entries as PresentPath];
    for (const e of list) checkEntry(e);
    this.guard(() =>
      this.conn
        .transaction(() => {
          for (const e of list) {
            this.stmts.upsert.run({
              cache: this.key,
              hashPart: e.hashPart,
              storePath: e.storePath ?? null,
              narinfoTime: e.narinfoTime,
              pruneMark: e.pruneMark ?? null,
              pathInfo: e.pathInfo ?? null,
            });
          }
        })
        .immediate(),
    );
  }

  /** The entry for one hash part, if the cache is known to hold it. */
  getPresent(hashPart: string): PresentPath | undefined {
    checkHashPart(hashPart);
    const row = this.guard(() => this.stmts.get.get(this.key, hashPart) as Row | undefined);
    return row === undefined ? undefined : toPresent(row);
  }

  /** Entries for every hash part given that the cache is known to hold (one query). */
  getPresentMany(hashParts: Iterable<string>): Map<string, PresentPath> {
    // Not validated one by one (a malformed key simply matches nothing): at 100k+ keys
    // the checks cost more than the query.
    const list = Array.isArray(hashParts) ? (hashParts as string[]) : [...hashParts];
    const out = new Map<string, PresentPath>();
    if (list.length === 0) return out;
    const rows = this.guard(() => this.stmts.getMany.all(this.key, JSON.stringify(list)) as Row[]);
    for (const r of rows) out.set(r.hash_part, toPresent(r));
    return out;
  }

  /**
   * Like getPresentMany, for the entries among these that have path info recorded, with
   * it (JSON text as it was given, not interpreted here).
   */
  getPresentWithPathInfo(
    hashParts: readonly string[],
  ): Map<string, PresentPath & { pathInfo: string }> {
    const out = new Map<string, PresentPath & { pathInfo: string }>();
    if (hashParts.length === 0) return out;
    const rows = this.guard(
      () =>
        this.stmts.getPathInfos.all(this.key, JSON.stringify(hashParts)) as [
          string,
          string | null,
          number,
          string | null,
          string,
        ][],
    );
    for (const [hashPart, storePath, narinfoTime, pruneMark, pathInfo] of rows) {
      out.set(hashPart, {
        hashPart,
        storePath: storePath ?? undefined,
        narinfoTime,
        ...(pruneMark === null ? {} : { pruneMark }),
        pathInfo,
      });
    }
    return out;
  }

  /** Attach path info to entries already present (others are left alone). Returns how many changed. */
  recordPathInfos(entries: readonly { hashPart: string; pathInfo: string }[]): number {
    for (const e of entries) checkHashPart(e.hashPart);
    if (entries.length === 0) return 0;
    return this.guard(() =>
      this.conn
        .transaction(() => {
          let n = 0;
          for (const e of entries) {
            n += this.stmts.setPathInfo.run(e.pathInfo, this.key, e.hashPart).changes;
          }
          return n;
        })
        .immediate(),
    );
  }

  /**
   * Record the prune mark under which a push confirmed these paths (it found or published
   * them while its lease held, and read `pruneMark` from the bucket in that time). Only
   * existing entries change. Returns how many did.
   */
  confirmPresent(hashParts: Iterable<string>, pruneMark: string): number {
    const list = [...hashParts].map(checkHashPart);
    if (list.length === 0) return 0;
    if (typeof pruneMark !== 'string' || pruneMark.length === 0) {
      throw new IndexArgumentError(
        `prune mark must be a non-empty string, got ${JSON.stringify(pruneMark)}`,
      );
    }
    return this.guard(
      () => this.stmts.confirmMany.run(pruneMark, this.key, JSON.stringify(list)).changes,
    );
  }

  /** Forget paths (pruning deleted them). Returns how many entries were removed. */
  forgetPresent(hashParts: Iterable<string>): number {
    const list = [...hashParts].map(checkHashPart);
    if (list.length === 0) return 0;
    return this.guard(() => this.stmts.forgetMany.run(this.key, JSON.stringify(list)).changes);
  }

  /** Forget every path of this cache (`--clear-cache`). Returns how many were removed. */
  clearPresent(): number {
    return this.guard(() => this.stmts.clear.run(this.key).changes);
  }

  /** How many paths this cache is known to hold. */
  countPresent(): number {
    return this.guard(() => (this.stmts.count.get(this.key) as { n: number }).n);
  }

  /** A state value of this cache (e.g. `initial_scan_done`), if set. */
  getState(key: string): string | undefined {
    const row = this.guard(
      () => this.stmts.getState.get(this.key, key) as { value: string } | undefined,
    );
    return row?.value;
  }

  setState(key: string, value: string): void {
    if (typeof key !== 'string' || key.length === 0 || typeof value !== 'string') {
      throw new IndexArgumentError(
        `state key and value must be strings (key ${JSON.stringify(key)})`,
      );
    }
    this.guard(() => this.stmts.setState.run(this.key, key, value));
  }

  /** Remove one state value; returns whether it was set. */
  deleteState(key: string): boolean {
    return this.guard(() => this.stmts.deleteState.run(this.key, key).changes > 0);
  }

  /** Every state value of this cache, by key. */
  allState(): Record<string, string> {
    const rows = this.guard(
      () => this.stmts.allState.all(this.key) as { key: string; value: string }[],
    );
    return Object.fromEntries(rows.map((r) => [r.key, r.value]));
  }

  /** Remove every state value of this cache. */
  clearState(): void {
    this.guard(() => this.stmts.clearState.run(this.key));
  }

  /**
   * For other src/index modules (the upload queue, service state) that keep their own
   * tables in this file: the connection and this cache's row id. Not for use elsewhere.
   * @internal
   */
  get internals(): { db: Database.Database; cacheKey: number } {
    return { db: this.conn, cacheKey: this.key };
  }

  /** Close the file. Idempotent; any later call fails with INDEX_CLOSED. */
  close(): void {
    const db = this.db;
    this.db = undefined;
    db?.close();
  }
}
