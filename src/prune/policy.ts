/**
 * The prune policy in the units the planner works in (milliseconds and bytes), built from
 * the `prune_*` settings. Pure.
 */
import { PrunePolicyError } from './errors.js';

export const DAY_MS = 86_400_000;

/**
 * How old an unreferenced NAR (or `.ls` listing) must be before it is deleted. A NAR with no
 * narinfo is either left over from an interrupted upload or belongs to an upload in progress
 * on some machine whose narinfo is not written yet; only age tells them apart, so this must
 * exceed the longest upload (a NAR is stored, then its narinfo follows once its references
 * are published). A day covers a 100 GB NAR at about 10 Mbit/s.
 */
export const DEFAULT_ORPHAN_GRACE_MS = DAY_MS;

/** Multipart uploads started longer ago than this are abandoned: they are aborted. */
export const DEFAULT_STALE_UPLOAD_MS = DAY_MS;

export interface PrunePolicy {
  /** A narinfo written or refreshed less than this long ago is live. */
  retentionMs: number;
  /**
   * Narinfos written or refreshed less than this long ago are kept with their closures,
   * by both the age and the size policy: writers that take no lease (`nix copy`, older
   * Loft) may be publishing on top of them. Pushes of this Loft are protected by their
   * leases instead, so 0 is safe for them.
   */
  graceMs: number;
  /** Size budget in bytes (narinfos + listings + NARs); undefined: no size limit. */
  maxSizeBytes: number | undefined;
  /** A size-triggered prune shrinks the cache to this percentage of `maxSizeBytes`. */
  targetPercentage: number;
  /** Minimum age of an unreferenced NAR or listing before it is deleted. */
  orphanGraceMs: number;
  /** Minimum age of a pending multipart upload before it is aborted. */
  staleUploadMs: number;
}

/** The `prune` part of LoftConfig (kept structural so prune needs no config import). */
export interface PruneSettings {
  readonly retentionDays: number;
  readonly maxSizeBytes: number | undefined;
  readonly targetPercentage: number;
  /** `prune_grace_minutes`; undefined: the default. */
  readonly graceMinutes?: number;
}

/** `prune_grace_minutes` when unset. */
export const DEFAULT_GRACE_MINUTES = 10;

/**
 * Refresh-on-use: a push refreshes a cached narinfo it relies on when it is older than
 * this, half the retention, so paths in use stay live by age and recent by LastModified
 * (which the size policy evicts by, least recently used first).
 */
export function refreshAfterMs(retentionMs: number): number {
  return retentionMs / 2;
}

export function policyFromSettings(
  s: PruneSettings,
  extra: Partial<Pick<PrunePolicy, 'orphanGraceMs' | 'staleUploadMs'>> = {},
): PrunePolicy {
  return checkPolicy({
    retentionMs: s.retentionDays * DAY_MS,
    graceMs: (s.graceMinutes ?? DEFAULT_GRACE_MINUTES) * 60_000,
    maxSizeBytes: s.maxSizeBytes,
    targetPercentage: s.targetPercentage,
    orphanGraceMs: extra.orphanGraceMs ?? DEFAULT_ORPHAN_GRACE_MS,
    staleUploadMs: extra.staleUploadMs ?? DEFAULT_STALE_UPLOAD_MS,
  });
}

/** Refuse values that would make the planner delete more than intended. */
export function checkPolicy(p: PrunePolicy): PrunePolicy {
  const positive = (field: string, v: number) => {
    if (!Number.isFinite(v) || v <= 0)
      throw new PrunePolicyError(field, v, 'expected a positive number');
  };
  positive('retentionMs', p.retentionMs);
  if (!Number.isFinite(p.graceMs) || p.graceMs < 0) {
    throw new PrunePolicyError('graceMs', p.graceMs, 'expected 0 or more');
  }
  positive('orphanGraceMs', p.orphanGraceMs);
  positive('staleUploadMs', p.staleUploadMs);
  if (p.maxSizeBytes !== undefined) positive('maxSizeBytes', p.maxSizeBytes);
  if (!(p.targetPercentage > 0 && p.targetPercentage <= 100)) {
    throw new PrunePolicyError('targetPercentage', p.targetPercentage, 'expected 1 to 100');
  }
  return p;
}

/** The byte total a size-triggered prune shrinks the cache to. */
export function targetBytes(p: PrunePolicy): number | undefined {
  return p.maxSizeBytes === undefined
    ? undefined
    : Math.floor((p.maxSizeBytes * p.targetPercentage) / 100);
}
