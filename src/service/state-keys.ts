/**
 * The service's per-cache state values in the local index (`cache_state`). One place, so
 * `--status`, `--reset-initial-scan` and the service agree on the names.
 */
export const STATE = {
  /** ISO time the initial scan completed: every path it queued was uploaded (or parked). */
  initialScanDone: 'initial_scan_done',
  /** ISO time the current initial scan queued its paths (set until it completes). */
  initialScanQueued: 'initial_scan_queued',
  /** ISO time the seen set got its baseline (first start without a scan). */
  seenBaseline: 'seen_baseline',
  /** ISO time the last scheduled prune ran (completed or failed: the schedule counts from it). */
  lastPrune: 'last_prune',
  /** Short text summary of the last prune, or why it failed. */
  lastPruneSummary: 'last_prune_summary',
} as const;

/** The prune record `--status` reads: the CLI's `--prune` and the scheduler both write it. */
export function recordPrune(
  index: { setState(key: string, value: string): void },
  at: Date,
  summary: string,
): void {
  index.setState(STATE.lastPrune, at.toISOString());
  index.setState(STATE.lastPruneSummary, summary);
}
