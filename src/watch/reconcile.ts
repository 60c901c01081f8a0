/**
 * Reconciliation: the safety net under the store watcher. Periodically (and at start) the
 * service asks the daemon for every valid path (one QueryAllValidPaths) and queues those it
 * has never seen, so paths whose lock events were dropped (inotify overflow) or that
 * appeared while Loft was down are still uploaded.
 *
 * Cost on a store of 100k paths: one daemon call that returns ~8 MB of path strings, then
 * a Set lookup per path against the seen set, held in memory as hash parts (about 7.5 MB
 * for 100k, measured); no per-path daemon query and no SQLite read. The seen set is persisted (the
 * `seen_paths` table) and loaded once at start.
 */
import { hashPartFast } from '../nix/store-path.js';

export interface ValidPathsDiff {
  /** Valid paths never seen before, in the order given. */
  fresh: string[];
  /** Hash parts seen before that are no longer valid (garbage-collected). */
  gone: string[];
}

/** Compare the store's valid paths with what was seen. Pure. */
export function diffValidPaths(
  valid: readonly string[],
  seen: ReadonlySet<string>,
): ValidPathsDiff {
  const fresh: string[] = [];
  const validParts = new Set<string>();
  for (const p of valid) {
    const hp = hashPartFast(p);
    validParts.add(hp);
    if (!seen.has(hp)) fresh.push(p);
  }
  const gone: string[] = [];
  for (const hp of seen) if (!validParts.has(hp)) gone.push(hp);
  return { fresh, gone };
}

/**
 * A copy of a hash part that does not keep its source string alive: V8 makes substrings
 * of 13+ characters "sliced strings" that reference the whole path, which would double the
 * seen set's memory.
 */
function own(hashPart: string): string {
  return Buffer.from(hashPart, 'latin1').toString('latin1');
}

/** Where the seen set is kept (UploadQueue implements it over SQLite). */
export interface SeenStore {
  seenHashParts(): string[];
  markSeen(hashParts: Iterable<string>): void;
  unsee(hashParts: Iterable<string>): void;
}

/** The seen set in memory, written through to its store. */
export class SeenSet {
  private readonly set: Set<string>;

  constructor(private readonly store: SeenStore) {
    this.set = new Set(store.seenHashParts());
  }

  get size(): number {
    return this.set.size;
  }

  has(hashPart: string): boolean {
    return this.set.has(hashPart);
  }

  view(): ReadonlySet<string> {
    return this.set;
  }

  /** Remember paths already persisted as seen (the queue marks what it enqueues). */
  noteQueued(storePaths: Iterable<string>): void {
    for (const p of storePaths) {
      const h = hashPartFast(p);
      if (!this.set.has(h)) this.set.add(own(h));
    }
  }

  /** Mark and persist. */
  add(hashParts: Iterable<string>): void {
    const list = [...hashParts].filter((h) => !this.set.has(h));
    if (list.length === 0) return;
    this.store.markSeen(list);
    for (const h of list) this.set.add(own(h));
  }

  remove(hashParts: readonly string[]): void {
    if (hashParts.length === 0) return;
    this.store.unsee(hashParts);
    for (const h of hashParts) this.set.delete(h);
  }
}
