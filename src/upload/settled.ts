/**
 * A push with nothing to publish, settled without a lease: when the plan uploads nothing,
 * refreshes nothing, and relies only on paths the local index holds as confirmed under the
 * prune mark the bucket still shows (src/storage/prune-mark.ts), no prune can have deleted
 * any of them since they were confirmed, so the closure is complete in the cache now and
 * the lease protocol has nothing left to protect (README, "Leases": the argument).
 */
import { readPruneMark } from '../storage/prune-mark.js';
import type { PushPlan } from './plan.js';
import type { PushContext } from './push-context.js';

/**
 * Whether `plan` may be settled without a lease, before asking the bucket: it publishes
 * nothing and every path it relies on came from an index that records prune marks.
 */
export function mayAvoidLease(ctx: PushContext, plan: PushPlan): boolean {
  return (
    plan.toUpload.length === 0 &&
    plan.toRefresh.length === 0 &&
    ctx.index?.confirmPresent !== undefined &&
    plan.alreadyCached.every((c) => c.source === 'index')
  );
}

/**
 * Whether `plan` can be settled without a lease. Reads the mark (one GET) only if it may.
 * The marks compared are those the plan read from the index, before this reading of the
 * bucket's mark: a row confirmed after it would prove the path present only later than now.
 */
export async function settledWithoutLease(ctx: PushContext, plan: PushPlan): Promise<boolean> {
  if (!mayAvoidLease(ctx, plan)) return false;
  if (plan.alreadyCached.length === 0) return true;
  const mark = await readPruneMark(ctx.blobs);
  return plan.alreadyCached.every((c) => c.pruneMark === mark);
}
