/**
 * Intake from the store watcher: lock-file removals, confirmed valid by the daemon. A watch
 * that breaks is set up again after a pause, and what happened while blind is found by
 * asking reconciliation to look at the whole store.
 */
import { describeError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import type { LocalStore } from '../store/local-store.js';
import { StoreWatcher } from '../watch/store-watcher.js';
import { Tasks, Timers, type Intake, type IntakeSource } from './intake.js';

export interface WatchSourceDeps {
  intake: Intake;
  store: Pick<LocalStore, 'storeDir' | 'validPaths'>;
  /** The store directory on disk (real_store_dir, or the store dir). */
  dirOnDisk: string;
  debounceMs: number;
  restartMs: number;
  logger: Logger;
  /** After a broken watch is set up again: look for what was missed. */
  afterBlind(): void;
}

export class WatchSource implements IntakeSource {
  private watcher: StoreWatcher | undefined;
  private readonly timers = new Timers();
  private readonly tasks: Tasks;
  private stopped = false;

  constructor(private readonly deps: WatchSourceDeps) {
    this.tasks = new Tasks(deps.logger);
  }

  start(): Promise<void> {
    this.watch();
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timers.clear();
    // Lock removals already seen are queued (durably) before we go.
    this.watcher?.close();
    await this.tasks.settle();
  }

  private watch(): void {
    const { deps } = this;
    this.watcher = new StoreWatcher({
      dir: deps.dirOnDisk,
      storeDir: deps.store.storeDir,
      debounceMs: deps.debounceMs,
      logger: deps.logger,
      onPaths: (paths) => this.tasks.track(this.intake(paths)),
      onError: (e) => {
        deps.logger.warn(`${describeError(e)}; watching again in ${deps.restartMs} ms`, {
          event: 'watch-error',
        });
        this.watcher = undefined;
        this.timers.later(deps.restartMs, () => this.restart());
      },
    });
    this.watcher.start();
  }

  /** Watch again after a failure, for as long as it takes; never throws from a timer. */
  private restart(): void {
    if (this.stopped) return;
    try {
      this.watch();
      this.deps.afterBlind();
    } catch (err) {
      this.watcher = undefined;
      this.deps.logger.error(`${describeError(err)}; watching again in ${this.deps.restartMs} ms`, {
        event: 'watch-error',
      });
      this.timers.later(this.deps.restartMs, () => this.restart());
    }
  }

  private async intake(paths: string[]): Promise<void> {
    // A released lock may belong to a failed build: only valid paths are queued.
    const valid = await this.deps.store.validPaths(paths);
    this.deps.logger.debug(
      `store watcher: ${valid.length} of ${paths.length} unlocked paths are valid`,
    );
    this.deps.intake.enqueue(valid, 'watch');
  }
}
