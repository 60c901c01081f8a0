/**
 * The service's metrics: what it uploaded (paths, NAR and compressed bytes, how long each
 * NAR took), failures by error code, the queue (read from the index at scrape time), the
 * last prune, and S3 requests by operation and outcome. Fed by push events, the prune
 * runner and the S3 store's request hook; nothing here does I/O.
 */
import { isLoftError } from '../util/errors.js';
import { Counter, Gauge, Histogram, Registry } from './registry.js';

/** The push events the metrics read (a subset of upload's PushEvent). */
export type MetricsPushEvent =
  | { type: 'path-stored'; path: string; narSize: number; fileSize: number; ms: number }
  | { type: 'path-published'; path: string }
  | { type: 'path-failed'; path: string; error: unknown }
  | { type: string };

export interface QueueGauges {
  pending(): number;
  parked(): number;
  /** When the oldest path still waiting was queued (ms since the epoch), if any. */
  oldestPendingAt(): number | undefined;
}

const UPLOAD_SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export class LoftMetrics {
  readonly registry = new Registry();
  readonly uploadedPaths = this.registry.add(
    new Counter(
      'loft_uploaded_paths_total',
      'Store paths uploaded and published (narinfo written).',
    ),
  );
  readonly uploadedNarBytes = this.registry.add(
    new Counter(
      'loft_uploaded_nar_bytes_total',
      'NAR bytes (uncompressed) of the published paths.',
    ),
  );
  readonly uploadedFileBytes = this.registry.add(
    new Counter(
      'loft_uploaded_file_bytes_total',
      'Compressed NAR bytes stored for the published paths.',
    ),
  );
  readonly failures = this.registry.add(
    new Counter('loft_upload_failures_total', 'Failed path uploads, by error code.', ['code']),
  );
  readonly uploadSeconds = this.registry.add(
    new Histogram(
      'loft_upload_duration_seconds',
      'Time to read, compress and store one NAR.',
      UPLOAD_SECONDS,
    ),
  );
  readonly s3Requests = this.registry.add(
    new Counter(
      'loft_s3_requests_total',
      'S3 requests (each attempt), by operation and status ("ok", an HTTP status, or "network").',
      ['operation', 'status'],
    ),
  );
  readonly lastPrune = this.registry.add(
    new Gauge(
      'loft_prune_last_run_timestamp_seconds',
      'When the last prune of this service ended.',
    ),
  );
  readonly lastPruneFreed = this.registry.add(
    new Gauge('loft_prune_last_freed_bytes', 'Bytes the last prune of this service deleted.'),
  );
  readonly #stored = new Map<string, { narSize: number; fileSize: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Gauges read from the service's queue at every scrape. */
  addQueueGauges(queue: QueueGauges): void {
    const now = this.now;
    const add = (name: string, help: string, read: () => number) =>
      this.registry.add(new Gauge(name, help, read));
    add('loft_queue_pending_paths', 'Paths waiting in the queue (with those in progress).', () =>
      queue.pending(),
    );
    add('loft_queue_parked_paths', 'Paths parked after failing every attempt.', () =>
      queue.parked(),
    );
    add(
      'loft_queue_oldest_pending_age_seconds',
      'Age of the oldest path waiting in the queue (0 when none).',
      () => {
        const at = queue.oldestPendingAt();
        return at === undefined ? 0 : Math.max(0, (now() - at) / 1000);
      },
    );
  }

  onPushEvent(ev: MetricsPushEvent): void {
    if (ev.type === 'path-stored' && 'fileSize' in ev) {
      this.#stored.set(ev.path, { narSize: ev.narSize, fileSize: ev.fileSize });
      this.uploadSeconds.observe(ev.ms / 1000);
    } else if (ev.type === 'path-published' && 'path' in ev) {
      const s = this.#stored.get(ev.path);
      this.#stored.delete(ev.path);
      this.uploadedPaths.inc();
      if (s) {
        this.uploadedNarBytes.inc({}, s.narSize);
        this.uploadedFileBytes.inc({}, s.fileSize);
      }
    } else if (ev.type === 'path-failed' && 'error' in ev) {
      this.#stored.delete(ev.path);
      this.failures.inc({ code: isLoftError(ev.error) ? ev.error.code : 'unexpected' });
    }
  }

  /** For the S3 store's request hook. */
  readonly onS3Request = (operation: string, status: string): void => {
    this.s3Requests.inc({ operation, status });
  };

  onPrune(at: Date, freedBytes: number | undefined): void {
    this.lastPrune.set(at.getTime() / 1000);
    if (freedBytes !== undefined) this.lastPruneFreed.set(freedBytes);
  }
}
