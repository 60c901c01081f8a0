/**
 * The second half of a push: run a prepared plan. Refresh what the plan relies on (and plan
 * again if the cache lost some of it meanwhile), make sure nix-cache-info exists, hold temp
 * roots on what is uploaded, and upload and publish it (PushRun).
 */
import { performance } from 'node:perf_hooks';
import { LoftError, isLoftError } from '../util/errors.js';
import { mapLimit } from '../util/limit.js';
import { CONTENT_TYPES, narInfoKey } from '../storage/keys.js';
import { ensureCacheInfo } from './cache-info.js';
import { summarizePlan, type CachedPath, type PushPlan } from './plan.js';
import { PushLease } from './lease.js';
import { hashPartIn, replan, type PreparedPush } from './prepare.js';
import { pathInfoToJson, type PathInfo } from '../store/path-info.js';
import type {
  ExecutionOptions,
  ObservationOptions,
  PushContext,
  PushResult,
} from './push-context.js';
import { PushProgress } from './events.js';
import { narSourceOptions } from './nar-source.js';
import { PrefetchedNars } from './prefetch.js';
import { PushRun, firstUploadCount } from './push-run.js';
import { uploadOrder } from './upload-order.js';
import { mayAvoidLease, settledWithoutLease } from './settled.js';

/** Server-side copies in flight while refreshing. */
const REFRESH_CONCURRENCY = 16;

export async function executePlan(
  pushCtx: PushContext,
  prepared: PreparedPush,
  exec: ExecutionOptions,
  observe: ObservationOptions = {},
): Promise<PushResult> {
  const t0 = performance.now();
  const emit = observe.onEvent ?? (() => {});
  const now = prepared.planning.now ?? (() => new Date());
  let plan = prepared.plan;
  const result: PushResult = {
    dryRun: false,
    summary: prepared.summary,
    refreshed: 0,
    uploaded: [],
    failed: [],
    notStarted: [],
    ms: 0,
    complete: false,
  };
  rememberRemote(pushCtx, plan, now);
  rememberPathInfos(pushCtx, prepared);

  // Nothing to publish and nothing pruned since the index confirmed it all: no lease.
  if (mayAvoidLease(pushCtx, plan)) {
    const [settled, cacheInfo] = await Promise.all([
      settledWithoutLease(pushCtx, plan),
      ensureCacheInfo(pushCtx.blobs, pushCtx.store.storeDir),
    ]);
    if (cacheInfo === 'written') {
      emit({ type: 'cache-info-written', description: pushCtx.blobs.description });
    }
    if (settled) {
      pushCtx.logger.debug('push: nothing to publish, the prune mark is unchanged: no lease');
      result.complete = true;
      result.ms = performance.now() - t0;
      return result;
    }
  }

  // Lease protocol (lease.ts): lease the closure, wait out prunes that touch it, trust
  // cached paths only as the bucket answers after that, publish only while the lease holds.
  // Its round trips come first: its PUT is on its way before the work below starts.
  const layout = { storeDir: pushCtx.store.storeDir, extension: pushCtx.compression.extension };
  await using leasing = PushLease.start(
    pushCtx.blobs,
    pushCtx.logger,
    prepared.closure,
    layout,
    exec.lease,
  );
  await new Promise<void>((resolve) => setImmediate(resolve));
  // While they run: open the connections and start the packer threads the uploads will
  // use, take temp roots over the paths to upload (the upload keeps them unless the bucket
  // changes the plan), and check nix-cache-info (not a narinfo: it needs no lease).
  if (plan.toUpload.length > 0) {
    pushCtx.blobs.warm?.();
    pushCtx.packer?.warm(plan.toUpload.length);
  }
  await using ahead = rootsAhead(pushCtx, plan.toUpload);
  // The first NARs are packed meanwhile too; none is sent before the lease holds.
  const progress = observe.progress ?? new PushProgress();
  const ordered = { plan, paths: uploadOrder(plan.toUpload) };
  await using prefetched = PrefetchedNars.start(
    pushCtx,
    ordered.paths.slice(0, firstUploadCount(exec.uploadThreads)),
    narSourceOptions(exec.writeListing, progress),
    ahead.roots,
  );
  // The unguarded store: ensureCacheInfo remembers per store object that it checked.
  const cacheInfo = ensureCacheInfo(pushCtx.blobs, pushCtx.store.storeDir);
  // Awaited below; a lease that fails first must not leave it an unhandled rejection.
  cacheInfo.catch(() => {});
  const lease = await leasing.held();
  const rechecked = await lease.recheck(
    plan,
    pushCtx.store.storeDir,
    (hps) => pushCtx.index?.forgetPresent(hps),
    async () => (await replan(pushCtx, prepared)).plan,
  );
  if (rechecked !== plan) {
    plan = rechecked;
    result.summary = summarizePlan(plan);
    emit({ type: 'plan', summary: result.summary });
    rememberRemote(pushCtx, plan, now);
  }
  const ctx: PushContext = { ...pushCtx, blobs: lease.guard(pushCtx.blobs) };

  // Before anything is published: a narinfo we write must not lean on a path pruning may
  // take, so paths we rely on that are past half the retention are made young again.
  let gone = await refresh(ctx, plan.toRefresh, now);
  if (gone.length > 0) {
    // Pruned between our look and the refresh: ask the bucket again about everything.
    emit({ type: 'replanned', gone: gone.length });
    ctx.index?.forgetPresent(gone.map((p) => hashPartIn(ctx, p)));
    const again = await replan(ctx, prepared);
    plan = again.plan;
    result.summary = again.summary;
    emit({ type: 'plan', summary: result.summary });
    rememberRemote(ctx, plan, now);
    gone = await refresh(ctx, plan.toRefresh, now);
    if (gone.length > 0) {
      throw new LoftError(
        'CACHE_CHANGING',
        'environment',
        `${gone.length} cached paths vanished from ${ctx.blobs.description} twice while this push read it (${gone[0]}...)`,
        { hint: 'another machine is pruning this cache right now; run the push again' },
      );
    }
  }
  result.refreshed = plan.toRefresh.length;
  if (result.refreshed > 0) emit({ type: 'refreshed', paths: result.refreshed });

  if ((await cacheInfo) === 'written') {
    emit({ type: 'cache-info-written', description: ctx.blobs.description });
  }
  if (plan.toUpload.length > 0) {
    // Keep the paths alive while we read them: a GC between plan and upload would fail them.
    const roots =
      ordered.plan === plan && ahead.roots
        ? await ahead.roots
        : await ctx.store.holdTempRoots(plan.toUpload.map((i) => i.path));
    try {
      const satisfied = new Set([
        ...plan.alreadyCached.map((c) => c.info.path),
        ...plan.upstream.map((i) => i.path),
        ...plan.excluded.map((i) => i.path),
      ]);
      const opts = { ...exec, ...observe, progress, now: prepared.planning.now };
      await prefetched?.ready();
      // Ordered again only if the bucket made us plan again.
      const toUpload = ordered.plan === plan ? ordered.paths : uploadOrder(plan.toUpload);
      await new PushRun(ctx, opts, toUpload, satisfied, result, emit, prefetched).execute();
    } finally {
      await roots.release();
    }
  }
  // Found or published while the lease held: a later push with nothing to publish may
  // trust these entries without a lease while the bucket shows the same prune mark.
  pushCtx.index?.confirmPresent?.(
    [...plan.alreadyCached.map((c) => c.info.path), ...result.uploaded.map((u) => u.path)].map(
      (p) => hashPartIn(ctx, p),
    ),
    lease.pruneMark,
  );
  result.complete =
    result.failed.length === 0 &&
    result.notStarted.length === 0 &&
    result.uploaded.length === plan.toUpload.length;
  result.ms = performance.now() - t0;
  return result;
}

/** Temp roots over `paths` taken now, released when the scope ends (if nobody did before). */
function rootsAhead(ctx: PushContext, paths: readonly PathInfo[]) {
  const roots = paths.length === 0 ? undefined : ctx.store.holdTempRoots(paths.map((i) => i.path));
  // Awaited where they are used, which reports a failure; never an unhandled rejection.
  roots?.catch(() => {});
  return {
    roots,
    async [Symbol.asyncDispose](): Promise<void> {
      (await roots?.catch(() => undefined))?.release();
    },
  };
}

/** What the bucket told us is worth remembering: the next push will not ask again. */
function rememberRemote(ctx: PushContext, plan: PushPlan, now: () => Date): void {
  const learned = plan.alreadyCached.filter((c) => c.source === 'remote');
  if (learned.length === 0) return;
  ctx.index?.recordPresent(
    learned.map((c) => ({
      hashPart: hashPartIn(ctx, c.info.path),
      storePath: c.info.path,
      narinfoTime: (c.lastModified ?? now()).getTime(),
      pathInfo: pathInfoToJson(c.info),
    })),
  );
}

/**
 * Index entries that have no path info yet (recorded by an older Loft, or from a listing),
 * or another than the daemon gave now (the roots, always asked of the daemon), get the
 * daemon's, so the next push walks them without the daemon (prepare.ts). Unchanged ones
 * are not written again: a re-push would rewrite its roots every time.
 */
function rememberPathInfos(ctx: PushContext, prepared: PreparedPush): void {
  const index = ctx.index;
  if (!index?.recordPathInfos) return;
  const candidates = prepared.plan.alreadyCached
    .filter((c) => c.source === 'index' && !prepared.fromIndex.has(c.info.path))
    .map((c) => ({ hashPart: hashPartIn(ctx, c.info.path), pathInfo: pathInfoToJson(c.info) }));
  if (candidates.length === 0) return;
  const recorded = index.getPresentWithPathInfo?.(candidates.map((c) => c.hashPart));
  const changed = candidates.filter((c) => recorded?.get(c.hashPart)?.pathInfo !== c.pathInfo);
  if (changed.length > 0) index.recordPathInfos(changed);
}

/** Renew narinfos (server-side copy onto themselves); returns the paths found gone. */
async function refresh(
  ctx: PushContext,
  paths: readonly CachedPath[],
  now: () => Date,
): Promise<string[]> {
  const gone: string[] = [];
  const done: CachedPath[] = [];
  await mapLimit(paths, REFRESH_CONCURRENCY, async (c) => {
    const key = narInfoKey(hashPartIn(ctx, c.info.path));
    try {
      await ctx.blobs.copy(key, key, {
        contentType: CONTENT_TYPES.narInfo,
        cacheControl: ctx.cacheControl?.narInfo,
      });
      done.push(c);
    } catch (e) {
      if (!isLoftError(e, 'STORAGE_NO_SUCH_KEY')) throw e;
      gone.push(c.info.path);
    }
  });
  const at = now().getTime();
  ctx.index?.recordPresent(
    done.map((c) => ({
      hashPart: hashPartIn(ctx, c.info.path),
      storePath: c.info.path,
      narinfoTime: at,
    })),
  );
  return gone;
}
