/**
 * The intake of `--watch-exec`: every store path that becomes valid while a command runs,
 * pushed while it runs, then checked once more when it is done.
 *
 * Two ways in, so none is missed: the store watcher (lock removals, confirmed valid by the
 * daemon; the same mechanism as the service) reports paths as they appear, and pushes of
 * them start at once, one after another; when the command has ended, the daemon's list of
 * valid paths is compared with the list taken before it started. Then one last push over
 * every new path is the authority: it uploads what the watcher missed (or what failed in an
 * earlier push), finds the rest cached, and its result says whether everything reached the
 * cache. Unlike the service there is no durable queue: this is a one-shot run, and a run
 * that fails exits non-zero so the CI job can be retried.
 */
import { performance } from 'node:perf_hooks';
import { describeError, isLoftError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import type { LocalStore } from '../store/local-store.js';
import { push, type PushContext, type PushOptions, type PushResult } from '../upload/push.js';
import { StoreWatcher } from '../watch/store-watcher.js';

/** Pushes tried again when a root vanished from the store between look and push. */
const GONE_ATTEMPTS = 3;

export interface WatchExecDeps {
  store: Pick<LocalStore, 'storeDir' | 'allValidPaths' | 'validPaths'>;
  pushContext: PushContext;
  /** Everything but drain/signal, which come from the options below. */
  pushOptions: PushOptions;
  /** The store directory on disk (a chroot store's `<root>/nix/store`). */
  storeDirOnDisk: string;
  logger: Logger;
  /** After each push (build logs, ...): failures here are logged, never fatal. */
  afterPush?: (result: PushResult, roots: readonly string[]) => Promise<void>;
  /** Debounce of the store watcher (tests). */
  watchDebounceMs?: number;
}

export interface WatchExecRun {
  /** The merged outcome: what every push uploaded, and the final push's verdict. */
  result: PushResult;
  /** Paths that became valid while the command ran (the final push's roots). */
  newPaths: number;
  /** How many of them the watcher reported while the command ran. */
  watched: number;
}

/**
 * Start watching (call before the command starts), then `finish()` once it has exited.
 * `drain` stops starting new uploads; `signal` aborts those in flight.
 */
export class WatchExecIntake {
  private before: Set<string> | undefined;
  private watcher: StoreWatcher | undefined;
  private readonly found = new Set<string>();
  private readonly queued: string[] = [];
  private readonly intake = new Set<Promise<void>>();
  private pumping: Promise<void> | undefined;
  private readonly results: PushResult[] = [];
  private readonly t0 = performance.now();
  private watched = 0;

  constructor(
    private readonly deps: WatchExecDeps,
    private readonly opts: { drain: AbortSignal; signal: AbortSignal },
  ) {}

  /** The valid paths now, and the watch. A store that cannot be watched is not fatal. */
  async start(): Promise<void> {
    this.before = new Set(await this.deps.store.allValidPaths());
    try {
      const w = new StoreWatcher({
        dir: this.deps.storeDirOnDisk,
        storeDir: this.deps.store.storeDir,
        debounceMs: this.deps.watchDebounceMs,
        logger: this.deps.logger,
        onPaths: (paths) => this.track(this.intakeWatched(paths)),
        onError: (e) => {
          this.deps.logger.warn(
            `${describeError(e)}; the new paths are found when the command ends`,
          );
          this.watcher = undefined;
        },
      });
      w.start();
      this.watcher = w;
    } catch (e) {
      this.deps.logger.warn(
        `${describeError(e)}; uploading only after the command ends (from the daemon's list of valid paths)`,
      );
    }
  }

  private track(p: Promise<void>): void {
    const t = p.catch((e: unknown) => this.deps.logger.warn(describeError(e)));
    this.intake.add(t);
    void t.finally(() => this.intake.delete(t));
  }

  private async intakeWatched(candidates: string[]): Promise<void> {
    const fresh = candidates.filter((p) => !this.before!.has(p) && !this.found.has(p));
    if (fresh.length === 0) return;
    // A released lock may belong to a failed build: only valid paths count.
    const valid = await this.deps.store.validPaths(fresh);
    const added = valid.filter((p) => !this.found.has(p));
    for (const p of added) this.found.add(p);
    this.watched += added.length;
    if (added.length === 0) return;
    this.deps.logger.debug(`watch-exec: ${added.length} new valid paths`, {
      event: 'watch-exec-found',
      paths: added.length,
    });
    this.queued.push(...added);
    this.pump();
  }

  /** One push at a time; paths found meanwhile wait for the next one. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = (async () => {
      try {
        while (this.queued.length > 0 && !this.opts.drain.aborted) {
          const roots = this.queued.splice(0);
          try {
            await this.pushOnce(roots);
          } catch (e) {
            // The final push tries these again and reports for good.
            if (this.opts.signal.aborted) return;
            this.deps.logger.warn(`push while the command runs failed: ${describeError(e)}`);
          }
        }
      } finally {
        this.pumping = undefined;
      }
    })();
  }

  private async pushOnce(roots: string[]): Promise<PushResult> {
    let r: PushResult;
    for (let attempt = 1; ; attempt++) {
      // Paths can be collected between being found and being pushed (or while the
      // closure is read): they are no longer this run's business.
      const valid = await this.deps.store.validPaths(roots);
      try {
        r = await push(this.deps.pushContext, valid, {
          ...this.deps.pushOptions,
          drain: this.opts.drain,
          signal: this.opts.signal,
        });
        break;
      } catch (e) {
        if (!isLoftError(e, 'PATH_NOT_VALID') || attempt >= GONE_ATTEMPTS) throw e;
        this.deps.logger.debug(`watch-exec: ${describeError(e)}; asking the daemon again`);
      }
    }
    this.results.push(r);
    if (this.deps.afterPush) {
      await this.deps
        .afterPush(r, roots)
        .catch((e: unknown) => this.deps.logger.warn(describeError(e)));
    }
    return r;
  }

  /** After the command exited: the last events, the daemon's list, the final push. */
  async finish(): Promise<WatchExecRun> {
    this.watcher?.close();
    while (this.intake.size > 0) await Promise.allSettled([...this.intake]);
    while (this.pumping) await this.pumping;
    const after = await this.deps.store.allValidPaths();
    const newPaths = after.filter((p) => !this.before!.has(p));
    const missed = newPaths.filter((p) => !this.found.has(p));
    if (missed.length > 0) {
      this.deps.logger.debug(`watch-exec: ${missed.length} new paths not seen by the watcher`, {
        event: 'watch-exec-missed',
        paths: missed.length,
      });
    }
    const earlier = this.results.flatMap((r) => r.uploaded);
    const final = await this.pushOnce(newPaths);
    return {
      result: merge(earlier, final, performance.now() - this.t0),
      newPaths: newPaths.length,
      watched: this.watched,
    };
  }

  /** Stop watching without a final push (start failed, or the command could not run). */
  close(): void {
    this.watcher?.close();
  }
}

/**
 * The run as one push: everything uploaded by any push, and the final push's plan minus
 * those (which it found cached because earlier pushes put them there).
 */
function merge(earlier: PushResult['uploaded'], final: PushResult, ms: number): PushResult {
  const narBytes = earlier.reduce((n, u) => n + u.narSize, 0);
  const cached = final.summary.alreadyCached;
  return {
    ...final,
    uploaded: [...earlier, ...final.uploaded],
    summary: {
      ...final.summary,
      alreadyCached: {
        paths: Math.max(0, cached.paths - earlier.length),
        narBytes: Math.max(0, cached.narBytes - narBytes),
      },
    },
    ms,
  };
}
