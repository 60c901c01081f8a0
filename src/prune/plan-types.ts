/**
 * The prune plan as a value: what the planner (plan.ts) reads and what it returns, which
 * the run (prune.ts), the CLI and the service read in turn; and the tally both count with.
 */
import type { ListedObject, PendingUpload } from '../storage/port.js';
import type { RefGraph } from './graph.js';
import type { NarInfoRead } from './narinfo-read.js';
import type { PrunePolicy } from './policy.js';

export interface PruneInput {
  now: Date;
  policy: PrunePolicy;
  /** The bucket's root keys (non-recursive listing) and its `nar/` keys. */
  objects: readonly ListedObject[];
  /** Each listed narinfo's reading, by key. A narinfo without one vanished: it is ignored. */
  narInfos: ReadonlyMap<string, NarInfoRead>;
  uploads?: readonly PendingUpload[];
  /** Narinfo keys kept whatever their age: written or changed after the listing began. */
  pinned?: ReadonlySet<string>;
  /** NAR keys whose narinfos this prune has deleted: unreferenced now, no grace period. */
  released?: ReadonlySet<string>;
  /** Delete no narinfo; plan only the NAR, listing and upload cleanup. */
  keepNarInfos?: boolean;
  /** Hash parts of pinned store paths: kept with their closures. */
  pins?: ReadonlySet<string>;
  /** Hash parts named by live push leases: kept with their closures. */
  leased?: ReadonlySet<string>;
  /** NAR keys named by live push leases: never deleted. */
  leasedNars?: ReadonlySet<string>;
  /**
   * Hash parts this prune announced it may delete (its intent): no other narinfo is
   * deleted. Undefined: no restriction (planning before the intent is written).
   */
  onlyDelete?: ReadonlySet<string>;
  /** Likewise for NAR keys. */
  onlyDeleteNars?: ReadonlySet<string>;
}

/** Why a narinfo is kept although the policy alone would let it go. */
export type ProtectionReason = 'pinned' | 'leased' | 'young';

export interface Tally {
  count: number;
  bytes: number;
}

export type DeletionReason = 'expired' | 'size';

export interface PlannedNarInfo {
  key: string;
  hashPart: string;
  size: number;
  lastModified: Date;
  reason: DeletionReason;
  /** Its `<hash>.ls`, deleted with it. */
  listing: ListedObject | undefined;
  /** The NAR it points at, when known. */
  narKey: string | undefined;
}

export interface PrunePlan {
  now: Date;
  policy: PrunePolicy;
  /** Narinfos to delete, referrers first; no member of a layer references another. */
  narInfoLayers: PlannedNarInfo[][];
  /** NARs referenced only by narinfos this plan (or this prune) deletes. */
  releasedNars: ListedObject[];
  /** NARs no narinfo references, older than the grace period. */
  orphanNars: ListedObject[];
  /** `.ls` listings without a narinfo, older than the grace period. */
  orphanListings: ListedObject[];
  staleUploads: PendingUpload[];
  /** What the bucket holds now (counted objects: narinfos, listings, NARs). */
  before: { narInfos: Tally; listings: Tally; nars: Tally; bytes: number };
  /** Per category of deletion. */
  deleting: {
    expired: Tally;
    sizeEvicted: Tally;
    listings: Tally;
    releasedNars: Tally;
    orphanNars: Tally;
    orphanListings: Tally;
    staleUploads: number;
  };
  /** Counted bytes left after the plan. */
  bytesAfter: number;
  kept: {
    narInfos: number;
    /** Narinfos within the retention period. */
    live: number;
    pinned: number;
    /** Narinfos kept in the closures of pins, leases and young narinfos, by the first reason. */
    protectedBy: Record<ProtectionReason, number>;
    /** Narinfos kept because this prune's intent did not name them. */
    notAnnounced: number;
    /** Narinfos that do not parse: kept, with everything they name. */
    unreadable: { key: string; problem: string }[];
    /** Unreferenced NARs and listings still inside the grace period. */
    youngOrphans: Tally;
    /** Multipart uploads younger than the threshold (or of unknown age, or foreign keys). */
    uploads: number;
    /** A kept narinfo whose URL is not a plain key: no NAR can be proven unused. */
    narDeletionBlockedBy: string | undefined;
  };
  /** `nix-cache-info` and keys prune does not recognise: never touched. */
  untouched: Tally;
  size:
    | {
        maxBytes: number;
        targetBytes: number;
        /** What would remain after the age policy alone. */
        bytesAfterAge: number;
        triggered: boolean;
        /** Narinfos refreshed before this were evicted by the size policy. */
        cutoff: Date | undefined;
        /** Bytes the size policy may not touch (pinned, leased, young, unreadable, new). */
        protectedBytes: number;
      }
    | undefined;
  warnings: string[];
  /** The reference graph the plan was made from. */
  graph: RefGraph;
}

/** One readable narinfo of the listing, as the planner indexes them. */
export interface PlanNode {
  hashPart: string;
  obj: ListedObject;
  read: NarInfoRead;
}

export const tally = (): Tally => ({ count: 0, bytes: 0 });

export const add = (t: Tally, size: number): void => {
  t.count++;
  t.bytes += size;
};
