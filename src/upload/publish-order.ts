/**
 * When may a narinfo be written? Only once its NAR is stored and every reference's narinfo
 * exists in the cache (published by this push, already cached, or left to upstream): the
 * closure invariant real Nix clients rely on. NARs themselves upload in any order (big
 * first); this tracker releases narinfos in a valid order as NARs finish, and when a path
 * fails it dooms every path that depends on it, since their narinfos could never be valid.
 */
export interface PublishNode {
  path: string;
  references: readonly string[];
}

type State = 'pending' | 'stored' | 'published' | 'failed';

export class PublishOrder {
  private readonly state = new Map<string, State>();
  /** For each path being uploaded, how many of its references are not yet satisfied. */
  private readonly waitingOn = new Map<string, number>();
  /** Reverse edges among the paths being uploaded. */
  private readonly dependents = new Map<string, string[]>();
  private readonly failure = new Map<string, string>();
  /** Paths whose NAR is stored and whose references are not all published yet. */
  private storedWaitingCount = 0;
  /** Paths not yet stored whose references became all published (see takeUnblocked). */
  private unblocked: string[] = [];

  /**
   * @param uploads the paths this push uploads
   * @param satisfied predicate for references outside `uploads` whose narinfos already
   *   exist or are deliberately left to upstream; any other outside reference is a bug in
   *   the plan and throws, since publishing over it would break the closure.
   */
  constructor(uploads: readonly PublishNode[], satisfied: (path: string) => boolean) {
    for (const n of uploads) this.state.set(n.path, 'pending');
    for (const n of uploads) {
      let waiting = 0;
      for (const ref of new Set(n.references)) {
        if (ref === n.path) continue; // a self-reference never blocks
        if (this.state.has(ref)) {
          waiting++;
          const list = this.dependents.get(ref) ?? [];
          list.push(n.path);
          this.dependents.set(ref, list);
        } else if (!satisfied(ref)) {
          throw new Error(
            `plan bug: ${n.path} references ${ref}, which is neither uploaded nor cached`,
          );
        }
      }
      this.waitingOn.set(n.path, waiting);
    }
  }

  /** The NAR of `path` is stored. Returns the paths whose narinfos may now be written. */
  narStored(path: string): string[] {
    if (this.state.get(path) !== 'pending') return [];
    this.state.set(path, 'stored');
    if (this.waitingOn.get(path) === 0) return [path];
    this.storedWaitingCount++;
    return [];
  }

  /** The narinfo of `path` is written. Returns dependents whose narinfos may now be written. */
  published(path: string): string[] {
    if (this.state.get(path) !== 'stored')
      throw new Error(`plan bug: ${path} published before its NAR`);
    this.state.set(path, 'published');
    const ready: string[] = [];
    for (const dep of this.dependents.get(path) ?? []) {
      const left = this.waitingOn.get(dep)! - 1;
      this.waitingOn.set(dep, left);
      if (left !== 0) continue;
      const st = this.state.get(dep);
      if (st === 'stored') {
        this.storedWaitingCount--;
        ready.push(dep);
      } else if (st === 'pending') this.unblocked.push(dep);
    }
    return ready;
  }

  /**
   * `path` failed. Returns the paths that depend on it, directly or not, and were not
   * failed already: they are failed too, with a reason naming the root cause.
   */
  failed(path: string, reason: string): string[] {
    const doomed: string[] = [];
    const mark = (p: string, why: string) => {
      const s = this.state.get(p);
      if (s === undefined || s === 'failed' || s === 'published') return false;
      if (s === 'stored' && this.waitingOn.get(p)! > 0) this.storedWaitingCount--;
      this.state.set(p, 'failed');
      this.failure.set(p, why);
      return true;
    };
    if (!mark(path, reason)) return doomed;
    const queue = [path];
    while (queue.length > 0) {
      for (const dep of this.dependents.get(queue.shift()!) ?? []) {
        if (mark(dep, `depends on ${path}, which failed`)) {
          doomed.push(dep);
          queue.push(dep);
        }
      }
    }
    return doomed;
  }

  /** NARs stored whose narinfos wait for a reference's narinfo (not those being written). */
  get storedWaiting(): number {
    return this.storedWaitingCount;
  }

  /**
   * Whether every reference of `path` (an upload) has its narinfo in the cache: its own
   * narinfo may then be written as soon as its NAR is stored.
   */
  referencesPublished(path: string): boolean {
    return this.waitingOn.get(path) === 0;
  }

  /**
   * Paths whose NARs are not stored and whose references have all been published since
   * the last call (a NAR started for one may publish as soon as it is stored).
   */
  takeUnblocked(): string[] {
    const u = this.unblocked;
    this.unblocked = [];
    return u;
  }

  isFailed(path: string): boolean {
    return this.state.get(path) === 'failed';
  }

  failureReason(path: string): string | undefined {
    return this.failure.get(path);
  }
}
