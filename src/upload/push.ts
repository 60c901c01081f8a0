/**
 * Push: the closure of some store paths into the cache, verified, compressed, signed and
 * published in closure order. One pipeline serves the one-shot `--upload-path` and the
 * service's batches, in two steps: preparePush() (src/upload/prepare.ts) makes the plan, a
 * value that `--dry-run` prints, and executePlan() (src/upload/execute.ts) runs it.
 *
 * Per path (src/upload/push-run.ts): the NAR, packed from disk in a worker thread or
 * streamed from the nix-daemon through a compressor (src/upload/nar-source.ts), checked
 * against the registered narHash and narSize, compressed and hashed (FileHash/FileSize),
 * into storage; then the narinfo, written only after its NAR is stored and every
 * reference's narinfo exists (PublishOrder); then the local index.
 */
import { performance } from 'node:perf_hooks';
import { executePlan } from './execute.js';
import { preparePush } from './prepare.js';
import type { PushContext, PushOptions, PushResult } from './push-context.js';

export { executePlan } from './execute.js';
export { preparePush, type PreparedPush } from './prepare.js';
export {
  uploadedBytes,
  type ExecutionOptions,
  type ObservationOptions,
  type PlanningOptions,
  type PresenceIndex,
  type PushContext,
  type PushOptions,
  type PushResult,
} from './push-context.js';

/** Prepare, report the plan, and (unless `dryRun`) execute it. */
export async function push(
  ctx: PushContext,
  roots: readonly string[],
  opts: PushOptions,
): Promise<PushResult> {
  const t0 = performance.now();
  const prepared = await preparePush(ctx, roots, opts, opts);
  if (opts.dryRun) {
    return {
      dryRun: true,
      summary: prepared.summary,
      refreshed: 0,
      uploaded: [],
      failed: [],
      notStarted: [],
      ms: performance.now() - t0,
      complete: prepared.plan.toUpload.length === 0,
      plan: prepared.plan,
    };
  }
  const result = await executePlan(ctx, prepared, opts, opts);
  result.ms = performance.now() - t0;
  return result;
}
