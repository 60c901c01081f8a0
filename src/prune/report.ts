/**
 * What a prune reports: its result (counts and bytes per category of deletion), the plan
 * as log fields, and the one line logs and `--status` show.
 */
import { formatBytes } from '../util/format.js';
import { tally, type PrunePlan, type Tally } from './plan-types.js';
import type { Protections } from './protection.js';

export interface PruneResult {
  dryRun: boolean;
  /**
   * The plan made from the first reading of the bucket (what a dry run shows); undefined
   * only when the signal stopped the prune before it had one.
   */
  plan: PrunePlan | undefined;
  deleted: {
    narInfos: Tally;
    listings: Tally;
    releasedNars: Tally;
    orphanNars: Tally;
    orphanListings: Tally;
    staleUploads: number;
  };
  /** Narinfos found refreshed or rewritten while pruning: kept, with their closures. */
  spared: string[];
  /** Objects another process deleted before we did. */
  alreadyGone: number;
  /** The signal stopped the prune between batches. */
  interrupted: boolean;
  /** Narinfos read from the bucket (the rest came from the cache of parsed narinfos). */
  narInfosFetched: number;
  /** The pins and leases the final plan honoured (the first reading for a dry run). */
  protections?: Protections;
  ms: number;
}

/** A result with nothing done yet. */
export function emptyResult(dryRun: boolean): PruneResult {
  return {
    dryRun,
    plan: undefined,
    deleted: {
      narInfos: tally(),
      listings: tally(),
      releasedNars: tally(),
      orphanNars: tally(),
      orphanListings: tally(),
      staleUploads: 0,
    },
    spared: [],
    alreadyGone: 0,
    interrupted: false,
    narInfosFetched: 0,
    protections: undefined,
    ms: 0,
  };
}

/** What was deleted so far, as log fields. */
export function countFields(r: PruneResult) {
  const d = r.deleted;
  return {
    narInfos: d.narInfos.count,
    listings: d.listings.count + d.orphanListings.count,
    nars: d.releasedNars.count + d.orphanNars.count,
    bytes:
      d.narInfos.bytes +
      d.listings.bytes +
      d.releasedNars.bytes +
      d.orphanNars.bytes +
      d.orphanListings.bytes,
    uploadsAborted: d.staleUploads,
    spared: r.spared.length,
  };
}

/** The plan in log fields: counts and bytes per category. */
export function planFields(plan: PrunePlan): Record<string, number | string | boolean> {
  const d = plan.deleting;
  const fields: Record<string, number | string | boolean> = {
    narInfos: plan.before.narInfos.count,
    bytesBefore: plan.before.bytes,
    expired: d.expired.count,
    sizeEvicted: d.sizeEvicted.count,
    listings: d.listings.count,
    releasedNars: d.releasedNars.count,
    releasedNarBytes: d.releasedNars.bytes,
    orphanNars: d.orphanNars.count,
    orphanNarBytes: d.orphanNars.bytes,
    orphanListings: d.orphanListings.count,
    staleUploads: d.staleUploads,
    kept: plan.kept.narInfos,
    bytesAfter: plan.bytesAfter,
  };
  if (plan.size) fields.sizeTriggered = plan.size.triggered;
  return fields;
}

/** One line for logs and `--status`: what a prune deleted. */
export function pruneSummaryLine(r: PruneResult): string {
  const d = r.deleted;
  const nars = d.releasedNars.count + d.orphanNars.count;
  const bytes = d.narInfos.bytes + d.releasedNars.bytes + d.orphanNars.bytes;
  return `deleted ${d.narInfos.count} narinfos and ${nars} NARs (${formatBytes(bytes)}), aborted ${d.staleUploads} stale uploads`;
}
