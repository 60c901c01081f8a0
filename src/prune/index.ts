/** Closure-aware pruning of a binary cache, against the bucket alone. */
export { prune } from './prune.js';
export type { PruneDeps, PruneOptions, PruneStep } from './prune.js';
export { planFields, pruneSummaryLine, type PruneResult } from './report.js';
export { MAX_NARINFO_BATCH, MAX_OBJECT_BATCH } from './delete-batches.js';
export { planPrune, narInfoDeletions } from './plan.js';
export type {
  PruneInput,
  PrunePlan,
  PlannedNarInfo,
  Tally,
  DeletionReason,
  ProtectionReason,
} from './plan.js';
export {
  policyFromSettings,
  refreshAfterMs,
  checkPolicy,
  targetBytes,
  DAY_MS,
  DEFAULT_ORPHAN_GRACE_MS,
  DEFAULT_STALE_UPLOAD_MS,
  DEFAULT_GRACE_MINUTES,
} from './policy.js';
export type { PrunePolicy, PruneSettings } from './policy.js';
export { NarInfoCache } from './snapshot.js';
export { readNarInfo, type NarInfoRead } from './narinfo-read.js';
export { PruneIncompleteError, PrunePolicyError } from './errors.js';
export { readProtections, type Protections } from './protection.js';
