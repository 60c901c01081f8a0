/**
 * Intake by the initial scan: once (when `scan_on_startup` is set and it has not
 * completed) or on `--force-scan`, every valid store path not known to be cached is queued
 * in the bulk lane. It completes when the queue holds no scanned path any more; the
 * worker calls checkDone() after each batch.
 */
import type { Logger } from '../util/log.js';
import type { LocalIndex } from '../index/local-index.js';
import type { LocalStore } from '../store/local-store.js';
import { initialScan } from './scan.js';
import { STATE } from './state-keys.js';
import type { Intake, IntakeSource } from './intake.js';

export interface ScanSourceDeps {
  intake: Intake;
  store: LocalStore;
  index: LocalIndex;
  /** scan_on_startup */
  onStartup: boolean;
  /** --force-scan */
  force: boolean;
  skipSignedByKeys: readonly string[];
  logger: Logger;
  /** The service's drain: a scan stops with it (and resumes at the next start). */
  signal: AbortSignal;
}

export class ScanSource implements IntakeSource {
  /** Scanned paths are queued and not all uploaded yet. */
  private active = false;
  private readonly abort = new AbortController();

  constructor(private readonly deps: ScanSourceDeps) {}

  /** Whether start() scans: forced, or due and not completed before. */
  get due(): boolean {
    const { force, onStartup, index } = this.deps;
    return force || (onStartup && index.getState(STATE.initialScanDone) === undefined);
  }

  async start(): Promise<void> {
    if (!this.due) return;
    const outer = this.deps.signal;
    if (outer.aborted) this.abort.abort();
    else outer.addEventListener('abort', () => this.abort.abort(), { once: true });
    const { intake, store, index, force, logger } = this.deps;
    const why = force
      ? '--force-scan: scanning every valid store path, asking the bucket about each'
      : index.getState(STATE.initialScanQueued) !== undefined
        ? 'resuming the initial scan'
        : 'initial scan: looking at every valid store path';
    logger.info(why, { event: 'scan-start', force });
    const r = await initialScan(
      {
        store,
        index,
        queue: intake.queue,
        seen: intake.seen,
        skipSignedByKeys: this.deps.skipSignedByKeys,
        exclude: intake.exclude,
        logger,
      },
      { force, signal: this.abort.signal },
    );
    if (r.interrupted) {
      logger.info('initial scan interrupted; it resumes at the next start');
      return;
    }
    index.setState(STATE.initialScanQueued, new Date().toISOString());
    if (index.getState(STATE.seenBaseline) === undefined) {
      index.setState(STATE.seenBaseline, new Date().toISOString());
    }
    logger.info(
      `initial scan: ${r.valid} valid paths, ${r.cached} known in the cache, ${r.upstream} signed upstream, ${r.excluded} excluded by patterns, ${r.queued} queued`,
      { event: 'scan-queued', ...r },
    );
    this.active = true;
    intake.wake('bulk');
    this.checkDone();
  }

  /** Stops a scan in progress (it resumes at the next start). */
  stop(): Promise<void> {
    this.abort.abort();
    return Promise.resolve();
  }

  /** After each batch: record the scan as complete once no scanned path is queued. */
  checkDone(): void {
    if (!this.active) return;
    const { intake, index, logger } = this.deps;
    if (intake.queue.pendingOfSource('scan') > 0) return;
    this.active = false;
    index.setState(STATE.initialScanDone, new Date().toISOString());
    index.deleteState(STATE.initialScanQueued);
    const parked = intake.queue.counts().parked;
    logger.info(
      `initial scan complete${parked > 0 ? `; ${parked} paths are parked (see loft --status)` : ''}`,
      { event: 'scan-complete', parked },
    );
  }
}
