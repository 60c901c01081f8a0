/**
 * Intake by reconciliation: every valid store path never seen before is queued; seen paths
 * no longer in the store are forgotten. Runs at start (unless the initial scan runs
 * instead), every `reconcileMs`, and when asked (after the store watcher was blind).
 * Runs never overlap: a run asked for while one is going joins it.
 */
import type { Logger } from '../util/log.js';
import type { LocalIndex } from '../index/local-index.js';
import type { LocalStore } from '../store/local-store.js';
import { hashPartFast } from '../nix/store-path.js';
import { diffValidPaths } from '../watch/reconcile.js';
import { STATE } from './state-keys.js';
import { Tasks, Timers, type Intake, type IntakeSource } from './intake.js';

export interface ReconcileSourceDeps {
  intake: Intake;
  store: Pick<LocalStore, 'allValidPaths'>;
  index: Pick<LocalIndex, 'getState' | 'setState'>;
  everyMs: number;
  /** Reconcile once at start (false when the initial scan looks at the store instead). */
  atStart: () => boolean;
  logger: Logger;
}

export class ReconcileSource implements IntakeSource {
  private readonly timers = new Timers();
  private readonly tasks: Tasks;
  private running: Promise<void> | undefined;

  constructor(private readonly deps: ReconcileSourceDeps) {
    this.tasks = new Tasks(deps.logger);
  }

  async start(): Promise<void> {
    if (this.deps.atStart()) await this.run();
    this.timers.every(this.deps.everyMs, () => this.runSoon());
  }

  async stop(): Promise<void> {
    this.timers.clear();
    await this.tasks.settle();
  }

  /** Reconcile in the background (tracked, so stop waits for it). */
  runSoon(): void {
    this.tasks.track(this.run());
  }

  private run(): Promise<void> {
    this.running ??= this.reconcile().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async reconcile(): Promise<void> {
    const { intake, store, index, logger } = this.deps;
    const t0 = Date.now();
    const valid = await store.allValidPaths();
    const diff = diffValidPaths(valid, intake.seen.view());
    if (index.getState(STATE.seenBaseline) === undefined) {
      // First start without a scan: what is in the store now is the past, not new work.
      intake.seen.add(diff.fresh.map(hashPartFast));
      index.setState(STATE.seenBaseline, new Date().toISOString());
      logger.info(
        `first start without an initial scan: the ${valid.length} paths already in the store are not uploaded (set scan_on_startup to upload them)`,
        { event: 'baseline', paths: valid.length },
      );
    } else if (diff.fresh.length > 0) {
      intake.enqueue(diff.fresh, 'reconcile');
    }
    intake.seen.remove(diff.gone);
    logger.debug(`reconciled ${valid.length} valid paths in ${Date.now() - t0} ms`, {
      event: 'reconciled',
      valid: valid.length,
      fresh: diff.fresh.length,
      gone: diff.gone.length,
      ms: Date.now() - t0,
    });
  }
}
