/**
 * Learns which store paths may have just become valid, by watching the store directory
 * (one non-recursive inotify watch) for the removal of `<path>.lock` files. Nix creates a
 * path's lock before building, substituting or copying it and deletes the lock only after
 * the path is registered valid, so a lock's removal is the moment to look. A directory's
 * creation means nothing (a path's files exist before it is valid) and `.drv.lock` files
 * are ignored (derivations are not uploaded on their own).
 *
 * What this reports are candidates: a failed build removes its lock too. The caller
 * confirms validity with the daemon. Node reports creation and removal alike as 'rename'
 * (and Nix writes to a lock after unlinking it), so every event on a lock name is checked
 * against the directory: only a lock that is no longer there counts.
 *
 * Events can be lost (inotify queue overflow, Loft not running): the service's periodic
 * reconciliation covers that; this watcher only makes the common case fast.
 */
import { existsSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../util/log.js';
import { nullLogger } from '../util/log.js';
import { HASH_PART_LENGTH } from '../nix/store-path.js';
import { NIX32_ALPHABET } from '../nix/nixbase32.js';
import { WatchError } from './errors.js';

export interface StoreWatcherOptions {
  /** The store directory as it exists on disk (for a chroot store, `<root>/nix/store`). */
  dir: string;
  /** The logical store directory paths are reported in (`/nix/store`). */
  storeDir: string;
  /** Candidate paths whose lock was removed, batched. */
  onPaths(paths: string[]): void;
  /** The watch broke (directory removed, too many watches); the owner decides what next. */
  onError(error: WatchError): void;
  /** Wait this long after the last event before reporting (default 100 ms). */
  debounceMs?: number;
  /** Report at least this often while events keep coming (default 1000 ms). */
  maxDelayMs?: number;
  logger?: Logger;
}

const LOCK_SUFFIX = '.lock';
const DRV_LOCK_SUFFIX = '.drv.lock';
const NAME_RE = new RegExp(`^[${NIX32_ALPHABET}]{${HASH_PART_LENGTH}}-[^/]+$`);

/**
 * The store path basename a lock file name belongs to, or undefined for anything that is
 * not a store path's lock (derivation locks, temp files, `.links`). Pure.
 */
export function lockedPathName(fileName: string): string | undefined {
  if (!fileName.endsWith(LOCK_SUFFIX) || fileName.endsWith(DRV_LOCK_SUFFIX)) return undefined;
  const name = fileName.slice(0, -LOCK_SUFFIX.length);
  return NAME_RE.test(name) ? name : undefined;
}

export class StoreWatcher {
  private watcher: FSWatcher | undefined;
  private readonly pending = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private firstPendingAt = 0;
  private closed = false;
  private readonly debounceMs: number;
  private readonly maxDelayMs: number;
  private readonly logger: Logger;
  /** Lock removals seen since start (what the tests count). */
  events = 0;

  constructor(private readonly opts: StoreWatcherOptions) {
    this.debounceMs = opts.debounceMs ?? 100;
    this.maxDelayMs = opts.maxDelayMs ?? 1000;
    this.logger = opts.logger ?? nullLogger;
  }

  /** Start watching. Throws WatchError when the directory cannot be watched. */
  start(): void {
    if (this.closed) throw new WatchError(this.opts.dir, 'the watcher was closed');
    if (!existsSync(this.opts.dir)) {
      throw new WatchError(this.opts.dir, 'the directory does not exist');
    }
    try {
      this.watcher = watch(this.opts.dir, { persistent: true }, (_type, name) => {
        if (typeof name === 'string') this.onEvent(name);
      });
    } catch (e) {
      throw new WatchError(this.opts.dir, (e as Error).message, e);
    }
    this.watcher.on('error', (e) => {
      this.stopWatching();
      this.opts.onError(new WatchError(this.opts.dir, e.message, e));
    });
  }

  private onEvent(fileName: string): void {
    const name = lockedPathName(fileName);
    if (name === undefined) return;
    // Still there: this is the lock being created or written, not released.
    if (existsSync(join(this.opts.dir, fileName))) return;
    const path = `${this.opts.storeDir}/${name}`;
    if (this.pending.has(path)) return;
    this.events++;
    if (this.pending.size === 0) this.firstPendingAt = Date.now();
    this.pending.add(path);
    this.schedule();
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    const waited = Date.now() - this.firstPendingAt;
    const delay = Math.max(0, Math.min(this.debounceMs, this.maxDelayMs - waited));
    this.timer = setTimeout(() => this.flush(), delay);
  }

  /** Report what is pending now (also called on close, so nothing seen is dropped). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.size === 0) return;
    const paths = [...this.pending];
    this.pending.clear();
    this.logger.debug(`store watcher: ${paths.length} lock(s) released`, { paths: paths.length });
    this.opts.onPaths(paths);
  }

  private stopWatching(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }

  /** Stop watching; paths already seen are reported first. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopWatching();
    this.flush();
  }
}
