/**
 * What the service's intake sources share: the one way paths enter the durable queue
 * (Intake), the interface every source implements, and the two helpers a source uses to
 * own its timers and its work in flight. No state here is shared between sources.
 */
import { describeError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import type { QueueLane, QueueSource, UploadQueue } from '../index/queue.js';
import { hashPartFast } from '../nix/store-path.js';
import { type SeenSet } from '../watch/reconcile.js';

/**
 * One way new paths are found: the store watcher, the hook inbox, reconciliation, the
 * initial scan. `start` begins (and may do a first round of work); `stop` ends intake and
 * waits for the work it started, so whatever it found is queued before the service exits.
 */
export interface IntakeSource {
  start(): Promise<void>;
  stop(): Promise<void>;
}

const SOURCE_TEXT: Record<QueueSource, string> = {
  watch: 'the store watcher',
  hook: 'the post-build hook',
  reconcile: 'reconciliation',
  scan: 'the initial scan',
};

/** The paths a filter keeps out, apart from the others (no filter: all are kept). */
export function splitExcluded(
  paths: readonly string[],
  exclude: ((storePath: string) => boolean) | undefined,
): { kept: readonly string[]; excluded: string[] } {
  if (!exclude) return { kept: paths, excluded: [] };
  const kept: string[] = [];
  const excluded: string[] = [];
  for (const p of paths) (exclude(p) ? excluded : kept).push(p);
  return { kept, excluded };
}

export function listForLog(paths: readonly string[], max = 20): string {
  const shown = paths.slice(0, max).join(' ');
  return paths.length > max ? `${shown} …(+${paths.length - max})` : shown;
}

/**
 * Paths into the queue (durably), marked seen, logged, and the worker woken. Paths the
 * include/exclude patterns keep out never enter the queue: they are marked seen (so
 * reconciliation does not find them again) and counted in the log line.
 */
export class Intake {
  constructor(
    readonly queue: UploadQueue,
    readonly seen: SeenSet,
    private readonly logger: Logger,
    readonly wake: (lane: QueueLane) => void,
    /** `include_patterns`/`exclude_patterns`; undefined when none are configured. */
    readonly exclude?: (storePath: string) => boolean,
  ) {}

  enqueue(all: readonly string[], source: QueueSource, force = false): void {
    if (all.length === 0) return;
    const { kept: paths, excluded } = splitExcluded(all, this.exclude);
    if (excluded.length > 0) {
      this.seen.add(excluded.map(hashPartFast));
      this.logger.info(
        `${excluded.length} paths from ${SOURCE_TEXT[source]} excluded by patterns; not queued`,
        { event: 'excluded', source, excluded: excluded.length, paths: listForLog(excluded) },
      );
    }
    if (paths.length === 0) return;
    const r = this.queue.enqueue(paths, { source, force, now: Date.now() });
    this.seen.noteQueued(paths);
    if (r.added > 0 || r.unparked > 0) {
      this.logger.info(
        `queued ${r.added} new paths from ${SOURCE_TEXT[source]}` +
          (r.unparked > 0 ? ` (${r.unparked} parked paths given another try)` : ''),
        { event: 'queued', source, added: r.added, unparked: r.unparked, paths: listForLog(paths) },
      );
    }
    this.wake(source === 'scan' ? 'bulk' : 'live');
  }
}

/** A source's timers, cleared together when it stops. */
export class Timers {
  private readonly timers = new Set<NodeJS.Timeout>();

  later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  every(ms: number, fn: () => void): void {
    this.timers.add(setInterval(fn, ms));
  }

  clear(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}

/** A source's work in flight: errors are logged (intake never stops on one), stop waits. */
export class Tasks {
  private readonly pending = new Set<Promise<unknown>>();

  constructor(private readonly logger: Logger) {}

  track(p: Promise<unknown>): void {
    const t = p.catch((e: unknown) => this.logger.warn(describeError(e)));
    this.pending.add(t);
    void t.finally(() => this.pending.delete(t));
  }

  async settle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }
}
