/**
 * The service's durable upload queue and its record of discovered paths, kept in the local
 * index's SQLite file (tables from migration 2) and scoped to one cache like the rest of it.
 *
 * Life of a row: `enqueue` (a watcher event, the post-build hook's inbox, reconciliation or
 * the initial scan) -> `take` claims due rows for a batch -> `complete` deletes them once
 * their closures are in the cache, `fail` records an attempt (retry later, or park after
 * the last attempt), `release` hands back rows a drained batch never started. Claims are
 * in-memory facts persisted only so `--status` can show them: `releaseAllClaims` at
 * service start frees the claims of a crashed process. One service per index file.
 *
 * Over 400 lines because every statement on the queue's tables is here, so the transactions
 * that must agree with each other can be read side by side.
 */
import { HASH_PART_LENGTH, isHashPart } from '../nix/store-path.js';
import { IndexArgumentError } from './errors.js';
import { translateSqliteError, type LocalIndex } from './local-index.js';

/** Where a queued path was discovered. */
export type QueueSource = 'watch' | 'hook' | 'reconcile' | 'scan';
/** Live paths (just built) are taken before bulk ones (the initial scan). */
export type QueueLane = 'live' | 'bulk';

export const LANE_OF: Record<QueueSource, QueueLane> = {
  watch: 'live',
  hook: 'live',
  reconcile: 'live',
  scan: 'bulk',
};
const LANE_NUMBER: Record<QueueLane, number> = { live: 0, bulk: 1 };
const SOURCES: readonly QueueSource[] = ['watch', 'hook', 'reconcile', 'scan'];

export interface QueueEntry {
  hashPart: string;
  storePath: string;
  source: QueueSource;
  lane: QueueLane;
  /** Ask the bucket for this path instead of trusting the index (`--force-scan`). */
  force: boolean;
  enqueuedAt: number;
  /** Failed attempts so far. */
  attempts: number;
  /** Due from this time on (ms since the epoch). */
  nextAttemptAt: number;
  lastError: string | undefined;
  lastFailedAt: number | undefined;
  /** Set when the path is parked: it failed every attempt and waits to be rediscovered. */
  parkedAt: number | undefined;
  /** pid of the process uploading it now. */
  claimedBy: number | undefined;
}

export interface EnqueueOptions {
  source: QueueSource;
  force?: boolean;
  now: number;
}

export interface EnqueueResult {
  /** Paths that were not queued before. */
  added: number;
  /** Parked paths given another round of attempts because they were discovered again. */
  unparked: number;
}

export interface FailOutcome {
  attempts: number;
  parked: boolean;
  /** When the path is due again (undefined when parked). */
  nextAttemptAt: number | undefined;
}

export interface QueueCounts {
  /** Rows waiting to be uploaded (not parked), including those in progress. */
  pending: number;
  /** Of those, claimed by a running batch. */
  inProgress: number;
  /** Of the pending rows, those that failed at least once and wait for a retry. */
  retrying: number;
  parked: number;
  bySource: Record<QueueSource, number>;
}

interface Row {
  hash_part: string;
  store_path: string;
  source: string;
  lane: number;
  force: number;
  enqueued_at: number;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  last_failed_at: number | null;
  parked_at: number | null;
  claimed_by: number | null;
}

/** Error texts are kept whole up to this length: enough for any message with its hint. */
const MAX_ERROR_LENGTH = 4000;

/** The hash part of a store path (`/nix/store/<hash>-<name>`), checked. */
export function hashPartOfPath(storePath: string): string {
  const base = storePath.slice(storePath.lastIndexOf('/') + 1);
  const hp = base.slice(0, HASH_PART_LENGTH);
  if (!storePath.startsWith('/') || !isHashPart(hp) || base[HASH_PART_LENGTH] !== '-') {
    throw new IndexArgumentError(`not a store path: ${JSON.stringify(storePath)}`);
  }
  return hp;
}

function toEntry(r: Row): QueueEntry {
  return {
    hashPart: r.hash_part,
    storePath: r.store_path,
    source: (SOURCES as readonly string[]).includes(r.source)
      ? (r.source as QueueSource)
      : 'reconcile',
    lane: r.lane === 0 ? 'live' : 'bulk',
    force: r.force !== 0,
    enqueuedAt: r.enqueued_at,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    lastError: r.last_error ?? undefined,
    lastFailedAt: r.last_failed_at ?? undefined,
    parkedAt: r.parked_at ?? undefined,
    claimedBy: r.claimed_by ?? undefined,
  };
}

const COLUMNS = `hash_part, store_path, source, lane, force, enqueued_at, attempts, next_attempt_at,
  last_error, last_failed_at, parked_at, claimed_by`;

/** Rows per transaction when queueing many paths (the initial scan of a large store). */
const ENQUEUE_CHUNK = 5000;

export class UploadQueue {
  private readonly stmts;
  private readonly db;
  private readonly cache: number;

  constructor(
    private readonly index: LocalIndex,
    /** Written into claims; the service's own pid. */
    private readonly pid: number = process.pid,
  ) {
    const { db, cacheKey } = index.internals;
    this.db = db;
    this.cache = cacheKey;
    this.stmts = {
      insert: db.prepare(
        `INSERT INTO upload_queue (cache, hash_part, store_path, source, lane, force, enqueued_at,
           attempts, next_attempt_at)
         VALUES (@cache, @hashPart, @storePath, @source, @lane, @force, @now, 0, @now)
         ON CONFLICT (cache, hash_part) DO NOTHING`,
      ),
      // A path discovered again: a parked row gets a fresh round of attempts; a waiting
      // row keeps its backoff (rediscovery must not defeat it) but may move to the live
      // lane or become forced.
      rediscover: db.prepare(
        `UPDATE upload_queue SET
           attempts = CASE WHEN parked_at IS NULL THEN attempts ELSE 0 END,
           next_attempt_at = CASE WHEN parked_at IS NULL THEN next_attempt_at ELSE @now END,
           source = CASE WHEN parked_at IS NULL AND lane <= @lane THEN source ELSE @source END,
           lane = min(lane, @lane),
           force = max(force, @force),
           parked_at = NULL
         WHERE cache = @cache AND hash_part = @hashPart`,
      ),
      wasParked: db.prepare(
        'SELECT parked_at IS NOT NULL AS parked FROM upload_queue WHERE cache = ? AND hash_part = ?',
      ),
      seen: db.prepare(
        'INSERT INTO seen_paths (cache, hash_part) VALUES (?, ?) ON CONFLICT DO NOTHING',
      ),
      take: db.prepare(
        `SELECT ${COLUMNS} FROM upload_queue
         WHERE cache = ? AND lane = ? AND parked_at IS NULL AND next_attempt_at <= ?
           AND claimed_by IS NULL
         ORDER BY next_attempt_at LIMIT ?`,
      ),
      claim: db.prepare('UPDATE upload_queue SET claimed_by = ? WHERE cache = ? AND hash_part = ?'),
      complete: db.prepare('DELETE FROM upload_queue WHERE cache = ? AND hash_part = ?'),
      release: db.prepare(
        'UPDATE upload_queue SET claimed_by = NULL WHERE cache = ? AND hash_part = ?',
      ),
      releaseAll: db.prepare(
        'UPDATE upload_queue SET claimed_by = NULL WHERE cache = ? AND claimed_by IS NOT NULL',
      ),
      get: db.prepare(`SELECT ${COLUMNS} FROM upload_queue WHERE cache = ? AND hash_part = ?`),
      fail: db.prepare(
        `UPDATE upload_queue SET attempts = @attempts, last_error = @error,
           last_failed_at = @now, next_attempt_at = @next, parked_at = @parkedAt,
           claimed_by = NULL
         WHERE cache = @cache AND hash_part = @hashPart`,
      ),
      nextDue: db.prepare(
        `SELECT min(next_attempt_at) AS t FROM upload_queue
         WHERE cache = ? AND parked_at IS NULL AND claimed_by IS NULL`,
      ),
      oldestPending: db.prepare(
        'SELECT min(enqueued_at) AS t FROM upload_queue WHERE cache = ? AND parked_at IS NULL',
      ),
      counts: db.prepare(
        `SELECT source,
           sum(parked_at IS NULL) AS pending,
           sum(parked_at IS NULL AND claimed_by IS NOT NULL) AS in_progress,
           sum(parked_at IS NULL AND attempts > 0) AS retrying,
           sum(parked_at IS NOT NULL) AS parked
         FROM upload_queue WHERE cache = ? GROUP BY source`,
      ),
      pendingOfSource: db.prepare(
        'SELECT count(*) AS n FROM upload_queue WHERE cache = ? AND source = ? AND parked_at IS NULL',
      ),
      listPending: db.prepare(
        `SELECT ${COLUMNS} FROM upload_queue WHERE cache = ? AND parked_at IS NULL
         ORDER BY claimed_by IS NULL, attempts = 0, lane, next_attempt_at LIMIT ?`,
      ),
      listParked: db.prepare(
        `SELECT ${COLUMNS} FROM upload_queue WHERE cache = ? AND parked_at IS NOT NULL
         ORDER BY parked_at DESC LIMIT ?`,
      ),
      dropCachedParked: db.prepare(
        `DELETE FROM upload_queue WHERE cache = ? AND parked_at IS NOT NULL AND EXISTS (
           SELECT 1 FROM present_paths p
           WHERE p.cache = upload_queue.cache AND p.hash_part = upload_queue.hash_part)`,
      ),
      seenAll: db.prepare('SELECT hash_part FROM seen_paths WHERE cache = ?'),
      seenCount: db.prepare('SELECT count(*) AS n FROM seen_paths WHERE cache = ?'),
      unsee: db.prepare(
        'DELETE FROM seen_paths WHERE cache = ? AND hash_part IN (SELECT value FROM json_each(?))',
      ),
    };
  }

  /** Opens the queue of the cache `index` sees (the tables exist from migration 2 on). */
  static of(index: LocalIndex, pid?: number): UploadQueue {
    return new UploadQueue(index, pid);
  }

  private tx<T>(fn: () => T): T {
    return this.run(() => this.db.transaction(fn).immediate());
  }

  private run<T>(fn: () => T): T {
    void this.index.internals; // throws INDEX_CLOSED once the index is closed
    try {
      return fn();
    } catch (e) {
      throw translateSqliteError(this.index.path, e);
    }
  }

  /**
   * Record discovered paths (and mark them seen). New paths are due at once; parked ones
   * get a fresh round of attempts; paths already waiting keep their place and backoff.
   */
  enqueue(storePaths: Iterable<string>, opts: EnqueueOptions): EnqueueResult {
    const rows = [...new Set(storePaths)].map((p) => ({
      storePath: p,
      hashPart: hashPartOfPath(p),
    }));
    const lane = LANE_NUMBER[LANE_OF[opts.source]];
    const force = opts.force ? 1 : 0;
    let added = 0;
    let unparked = 0;
    for (let i = 0; i < rows.length; i += ENQUEUE_CHUNK) {
      const chunk = rows.slice(i, i + ENQUEUE_CHUNK);
      this.tx(() => {
        for (const r of chunk) {
          const params = {
            cache: this.cache,
            hashPart: r.hashPart,
            storePath: r.storePath,
            source: opts.source,
            lane,
            force,
            now: opts.now,
          };
          if (this.stmts.insert.run(params).changes > 0) {
            added++;
          } else {
            const was = this.stmts.wasParked.get(this.cache, r.hashPart) as
              { parked: number } | undefined;
            this.stmts.rediscover.run(params);
            if (was?.parked === 1) unparked++;
          }
          this.stmts.seen.run(this.cache, r.hashPart);
        }
      });
    }
    return { added, unparked };
  }

  /**
   * Claim up to `limit` due rows of one lane, oldest due first. Rows of one batch share
   * `force` (the first due row decides), since a push either trusts the index or not.
   */
  take(lane: QueueLane, limit: number, now: number): QueueEntry[] {
    return this.tx(() => {
      // Over-read a little so a mixed force/non-force head still fills the batch.
      const rows = (
        this.stmts.take.all(this.cache, LANE_NUMBER[lane], now, limit * 2) as Row[]
      ).map(toEntry);
      if (rows.length === 0) return [];
      const force = rows[0]!.force;
      const batch = rows.filter((r) => r.force === force).slice(0, limit);
      for (const r of batch) this.stmts.claim.run(this.pid, this.cache, r.hashPart);
      return batch.map((r) => ({ ...r, claimedBy: this.pid }));
    });
  }

  /** The paths are in the cache (or deliberately left to upstream, or gone): forget them. */
  complete(hashParts: Iterable<string>): void {
    this.tx(() => {
      for (const h of hashParts) this.stmts.complete.run(this.cache, h);
    });
  }

  /** Hand back claimed rows untouched (a drained batch never started them). */
  release(hashParts: Iterable<string>): void {
    this.tx(() => {
      for (const h of hashParts) this.stmts.release.run(this.cache, h);
    });
  }

  /** At service start: a previous process that died cannot finish what it claimed. */
  releaseAllClaims(): number {
    return this.run(() => this.stmts.releaseAll.run(this.cache).changes);
  }

  /**
   * Record a failed attempt. After `maxAttempts` the row is parked; otherwise it is due
   * again after `delayMs(attempts)`.
   */
  fail(
    hashPart: string,
    reason: string,
    opts: { now: number; maxAttempts: number; delayMs: (attempts: number) => number },
  ): FailOutcome | undefined {
    return this.tx(() => {
      const row = this.stmts.get.get(this.cache, hashPart) as Row | undefined;
      if (row === undefined) return undefined;
      const attempts = row.attempts + 1;
      const parked = attempts >= opts.maxAttempts;
      const next = parked ? row.next_attempt_at : opts.now + Math.max(0, opts.delayMs(attempts));
      this.stmts.fail.run({
        cache: this.cache,
        hashPart,
        attempts,
        error: reason.length > MAX_ERROR_LENGTH ? `${reason.slice(0, MAX_ERROR_LENGTH)}…` : reason,
        now: opts.now,
        next,
        parkedAt: parked ? opts.now : null,
      });
      return { attempts, parked, nextAttemptAt: parked ? undefined : next };
    });
  }

  get(hashPart: string): QueueEntry | undefined {
    const row = this.run(() => this.stmts.get.get(this.cache, hashPart) as Row | undefined);
    return row === undefined ? undefined : toEntry(row);
  }

  /** When the earliest unclaimed, unparked row is due (undefined: the queue is idle). */
  nextDueAt(): number | undefined {
    const r = this.run(() => this.stmts.nextDue.get(this.cache) as { t: number | null });
    return r.t ?? undefined;
  }

  /** When the oldest path still waiting (not parked) was queued, ms since the epoch. */
  oldestPendingAt(): number | undefined {
    const row = this.run(() => this.stmts.oldestPending.get(this.cache) as { t: number | null });
    return row.t ?? undefined;
  }

  counts(): QueueCounts {
    const rows = this.run(
      () =>
        this.stmts.counts.all(this.cache) as {
          source: string;
          pending: number;
          in_progress: number;
          retrying: number;
          parked: number;
        }[],
    );
    const out: QueueCounts = {
      pending: 0,
      inProgress: 0,
      retrying: 0,
      parked: 0,
      bySource: { watch: 0, hook: 0, reconcile: 0, scan: 0 },
    };
    for (const r of rows) {
      out.pending += r.pending;
      out.inProgress += r.in_progress;
      out.retrying += r.retrying;
      out.parked += r.parked;
      const s = (SOURCES as readonly string[]).includes(r.source)
        ? (r.source as QueueSource)
        : 'reconcile';
      out.bySource[s] += r.pending;
    }
    return out;
  }

  /** Unparked rows of one source (the initial scan is done when its count reaches 0). */
  pendingOfSource(source: QueueSource): number {
    return this.run(() => (this.stmts.pendingOfSource.get(this.cache, source) as { n: number }).n);
  }

  /** Pending rows for display: in progress first, then retrying, then waiting. */
  listPending(limit: number): QueueEntry[] {
    return this.run(() => (this.stmts.listPending.all(this.cache, limit) as Row[]).map(toEntry));
  }

  /** Parked rows, most recently parked first. */
  listParked(limit: number): QueueEntry[] {
    return this.run(() => (this.stmts.listParked.all(this.cache, limit) as Row[]).map(toEntry));
  }

  /**
   * Forget parked rows whose path the index now records as present (uploaded by
   * `loft --upload-path`, or by another machine and learned since). Returns how many.
   */
  dropCachedParked(): number {
    return this.run(() => this.stmts.dropCachedParked.run(this.cache).changes);
  }

  /** Every hash part recorded as seen (loaded once by the service). */
  seenHashParts(): string[] {
    return this.run(() =>
      (this.stmts.seenAll.raw(true).all(this.cache) as [string][]).map((r) => r[0]),
    );
  }

  seenCount(): number {
    return this.run(() => (this.stmts.seenCount.get(this.cache) as { n: number }).n);
  }

  /** Mark paths seen without queueing them (baseline, or found cached/upstream by a scan). */
  markSeen(hashParts: Iterable<string>): void {
    const list = [...hashParts];
    for (let i = 0; i < list.length; i += ENQUEUE_CHUNK) {
      const chunk = list.slice(i, i + ENQUEUE_CHUNK);
      this.tx(() => {
        for (const h of chunk) this.stmts.seen.run(this.cache, h);
      });
    }
  }

  /** Forget seen paths (no longer in the store: garbage-collected). */
  unsee(hashParts: Iterable<string>): void {
    const list = [...hashParts];
    for (let i = 0; i < list.length; i += ENQUEUE_CHUNK) {
      const chunk = list.slice(i, i + ENQUEUE_CHUNK);
      this.run(() => this.stmts.unsee.run(this.cache, JSON.stringify(chunk)));
    }
  }
}
