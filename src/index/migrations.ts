/**
 * The local index's schema, as an ordered list of migrations. The database's
 * `PRAGMA user_version` is the last one applied. To change the schema, append a
 * migration with the next version; never edit one that has shipped (databases in the
 * field already ran it).
 *
 *   { version: 2, name: 'upload queue', up: (db) => db.exec(`CREATE TABLE ...`) }
 *
 * All pending migrations run in one IMMEDIATE transaction, so two processes opening an
 * old database at once do not both migrate it, and a migration that throws leaves the
 * database exactly as it was.
 */
import type { Database } from 'better-sqlite3';
import { IndexArgumentError, IndexTooNewError } from './errors.js';

export interface Migration {
  /** 1, 2, 3, ...: the list's position. */
  readonly version: number;
  /** What it adds, for error messages. */
  readonly name: string;
  up(db: Database): void;
}

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'caches, known-present paths, per-cache state',
    up(db) {
      db.exec(`
        -- One row per cache (bucket) this index has seen. Other tables refer to the
        -- small integer rather than repeating the identity string in every row.
        CREATE TABLE caches (
          id INTEGER PRIMARY KEY,
          cache_id TEXT NOT NULL UNIQUE,
          created_at INTEGER NOT NULL
        );

        -- Store paths whose narinfo the cache is known to hold. narinfo_time is in ms
        -- since the epoch: when the narinfo was written or refreshed, or its
        -- LastModified when learned from a listing. store_path is NULL when only the
        -- narinfo key is known (a listing gives the hash part, not the name).
        CREATE TABLE present_paths (
          cache INTEGER NOT NULL REFERENCES caches(id) ON DELETE CASCADE,
          hash_part TEXT NOT NULL,
          store_path TEXT,
          narinfo_time INTEGER NOT NULL,
          PRIMARY KEY (cache, hash_part)
        ) WITHOUT ROWID;

        -- Small per-cache flags and values (initial_scan_done, ...).
        CREATE TABLE cache_state (
          cache INTEGER NOT NULL REFERENCES caches(id) ON DELETE CASCADE,
          key TEXT NOT NULL,
          value TEXT NOT NULL,
          PRIMARY KEY (cache, key)
        ) WITHOUT ROWID;
      `);
    },
  },
  {
    version: 2,
    name: 'upload queue and discovered paths (service mode)',
    up(db) {
      db.exec(`
        -- The service's durable queue: every store path it discovered and has not yet
        -- uploaded. A row is written before the upload starts and deleted only after
        -- the path (with its closure) is in the cache, so a crash loses nothing.
        --   lane: 0 = live (store watcher, post-build hook, reconciliation), 1 = bulk
        --         (initial scan); live rows are taken first.
        --   force: ask the bucket instead of trusting present_paths (--force-scan).
        --   next_attempt_at: ms since the epoch; the row is due from then on.
        --   parked_at: set when the path failed queue_max_attempts times; parked rows
        --         are not retried until the path is discovered again.
        --   claimed_by: pid of the service uploading it right now (NULL otherwise);
        --         claims of a crashed service are released at the next start.
        CREATE TABLE upload_queue (
          cache INTEGER NOT NULL REFERENCES caches(id) ON DELETE CASCADE,
          hash_part TEXT NOT NULL,
          store_path TEXT NOT NULL,
          source TEXT NOT NULL,
          lane INTEGER NOT NULL,
          force INTEGER NOT NULL DEFAULT 0,
          enqueued_at INTEGER NOT NULL,
          attempts INTEGER NOT NULL DEFAULT 0,
          next_attempt_at INTEGER NOT NULL,
          last_error TEXT,
          last_failed_at INTEGER,
          parked_at INTEGER,
          claimed_by INTEGER,
          PRIMARY KEY (cache, hash_part)
        ) WITHOUT ROWID;
        CREATE INDEX upload_queue_due ON upload_queue (cache, lane, next_attempt_at)
          WHERE parked_at IS NULL;

        -- Store paths the service has already discovered (queued, or found cached or
        -- upstream-signed by the initial scan, or present when it first started), so
        -- the periodic reconciliation queues only paths that are new since.
        CREATE TABLE seen_paths (
          cache INTEGER NOT NULL REFERENCES caches(id) ON DELETE CASCADE,
          hash_part TEXT NOT NULL,
          PRIMARY KEY (cache, hash_part)
        ) WITHOUT ROWID;
      `);
    },
  },
  {
    version: 3,
    name: 'prune mark of confirmed paths',
    up(db) {
      db.exec(`
        -- The bucket's prune mark (src/storage/prune-mark.ts) read by the push that last
        -- confirmed the path under its lease (or published it); NULL when the row came
        -- from elsewhere (a listing, a plan before its lease). A push that publishes
        -- nothing trusts the row without a lease only while the bucket shows this mark.
        ALTER TABLE present_paths ADD COLUMN prune_mark TEXT;
      `);
    },
  },
  {
    version: 4,
    name: 'path info of present paths',
    up(db) {
      db.exec(`
        -- The local store's path info of store_path (JSON, src/store/path-info.ts) as this
        -- machine published or found it, so a later push walks the closure of cached paths
        -- here instead of asking the nix-daemon once per path. NULL when unknown.
        ALTER TABLE present_paths ADD COLUMN path_info TEXT;
      `);
    },
  },
];

/** The schema version this Loft writes. */
export const SCHEMA_VERSION = migrations.length;

function checkList(list: readonly Migration[]): void {
  list.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new IndexArgumentError(
        `migration "${m.name}" has version ${m.version} at position ${i + 1}: versions must be 1, 2, 3, ... in order`,
      );
    }
  });
}

/**
 * Bring `db` up to the last version in `list`. Returns the versions before and after.
 * Throws IndexTooNewError when the database is newer than the list.
 */
export function migrate(
  db: Database,
  path: string,
  list: readonly Migration[] = migrations,
): { from: number; to: number } {
  checkList(list);
  const target = list.length;
  const version = () => db.pragma('user_version', { simple: true }) as number;
  const before = version();
  if (before > target) throw new IndexTooNewError(path, before, target);
  if (before === target) return { from: before, to: before };
  return db
    .transaction(() => {
      // Read again under the write lock: another process may have migrated meanwhile.
      const from = version();
      if (from > target) throw new IndexTooNewError(path, from, target);
      for (const m of list.slice(from)) {
        m.up(db);
        db.pragma(`user_version = ${m.version}`);
      }
      return { from, to: target };
    })
    .immediate();
}
