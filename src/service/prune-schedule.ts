/**
 * Runs pruning inside the service on `prune_schedule`. The time of the last prune is kept
 * in the local index, so intervals count across restarts and a daily time missed while the
 * service was down runs at start (`nextRun` in src/config/schedule.ts decides). Timers
 * longer than setTimeout's limit (~24.8 days) are chained. A prune that fails is logged and
 * tried again at the next occurrence; one interrupted by shutdown is finished by the next
 * run (pruning keeps the cache closure-complete at every step).
 */
import { describeError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { formatSchedule, nextRun, type Schedule } from '../config/schedule.js';

/** What one prune reports back, for the log and `--status`. */
export interface PruneRunSummary {
  text: string;
  /** Stopped by the signal before it finished. */
  interrupted: boolean;
  /** Bytes deleted (metrics). */
  freedBytes?: number;
}

export type PruneRunner = (signal: AbortSignal) => Promise<PruneRunSummary>;

export interface PruneSchedulerOptions {
  schedule: Schedule;
  run: PruneRunner;
  lastRun(): Date | undefined;
  recordRun(at: Date, summary: string): void;
  logger: Logger;
  now?: () => Date;
}

/** setTimeout's maximum delay. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export class PruneScheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private stopped = false;
  /** When the next prune is due (for the log and tests). */
  nextAt: Date | undefined;

  constructor(private readonly opts: PruneSchedulerOptions) {}

  private now(): Date {
    return this.opts.now?.() ?? new Date();
  }

  start(): void {
    this.plan();
    this.opts.logger.info(
      `pruning ${formatSchedule(this.opts.schedule)}; next at ${this.nextAt!.toISOString()}`,
      { event: 'prune-scheduled', next: this.nextAt!.toISOString() },
    );
  }

  private plan(): void {
    if (this.stopped) return;
    this.nextAt = nextRun(this.opts.schedule, this.now(), this.opts.lastRun());
    this.arm();
  }

  private arm(): void {
    if (this.stopped || this.nextAt === undefined) return;
    const wait = this.nextAt.getTime() - this.now().getTime();
    // unref: a pending prune must not keep a stopping service alive.
    this.timer = setTimeout(
      () => {
        if (this.nextAt!.getTime() > this.now().getTime()) this.arm();
        else this.fire();
      },
      Math.max(0, Math.min(wait, MAX_TIMER_MS)),
    );
    this.timer.unref();
  }

  private fire(): void {
    this.running = (async () => {
      const at = this.now();
      this.opts.logger.info('scheduled prune starting', { event: 'prune-start' });
      try {
        const r = await this.opts.run(this.abort.signal);
        if (r.interrupted) {
          this.opts.logger.warn(`prune interrupted: ${r.text}; the next run completes it`);
        } else {
          this.opts.recordRun(at, r.text);
          this.opts.logger.info(`prune done: ${r.text}`, { event: 'prune-done' });
        }
      } catch (e) {
        this.opts.logger.error(`scheduled prune failed: ${describeError(e)}`, {
          event: 'prune-failed',
        });
        // Try again at the next occurrence, not in a tight loop.
        this.opts.recordRun(at, `failed: ${describeError(e).split('\n')[0]}`);
      } finally {
        this.running = undefined;
        this.plan();
      }
    })();
  }

  /** Stop scheduling; a prune in progress is asked to stop between batches and awaited. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.abort.abort();
    await this.running;
  }
}
