/**
 * The first half of a push: the closure of the roots and the plan for it (what to upload,
 * what the cache has, what upstream serves, what is excluded, what to refresh), as a value.
 * Nothing is written here: `--dry-run` prints this value and executePlan() runs it.
 */
import { hashPartFast, storePathHashPart } from '../nix/store-path.js';
import { pathInfoFromJson, type PathInfo } from '../store/path-info.js';
import {
  planPush,
  summarizePlan,
  type IndexedPresence,
  type PlanSummary,
  type PushPlan,
} from './plan.js';
import type { ObservationOptions, PlanningOptions, PushContext } from './push-context.js';
import { remoteNarInfos } from './remote-lookup.js';

export interface PreparedPush {
  roots: readonly string[];
  /** Every path of the roots' closures, dependencies first. */
  closure: readonly PathInfo[];
  /**
   * Paths whose info came from the local index (recorded when the cache got them), not
   * from the daemon; none of them is in plan.toUpload.
   */
  fromIndex: ReadonlySet<string>;
  plan: PushPlan;
  summary: PlanSummary;
  /** How it was planned, so execution can plan again the same way if the cache changed. */
  planning: PlanningOptions;
}

export async function preparePush(
  ctx: PushContext,
  roots: readonly string[],
  planning: PlanningOptions,
  observe: ObservationOptions = {},
): Promise<PreparedPush> {
  const emit = observe.onEvent ?? (() => {});
  const ignoreIndex = planning.ignoreIndex ?? false;
  let walked = await walk(ctx, roots, !ignoreIndex);
  emit({ type: 'closure', roots: roots.length, paths: walked.closure.length });
  let plan = await makePlan(ctx, walked, planning, ignoreIndex);
  const fresh = await freshInfos(ctx, plan, walked);
  if (fresh) walked = fresh;
  else {
    // A path to upload now references other paths than when the cache got it: the walk
    // through recorded infos may have missed some. Walk and plan again with the daemon's.
    walked = await walk(ctx, roots, false);
    emit({ type: 'closure', roots: roots.length, paths: walked.closure.length });
    plan = await makePlan(ctx, walked, planning, ignoreIndex);
  }
  const summary = summarizePlan(plan);
  emit({ type: 'plan', summary });
  return { roots, closure: walked.closure, fromIndex: walked.fromIndex, plan, summary, planning };
}

/** Plan again, asking the bucket about every path (the index was wrong). */
export async function replan(ctx: PushContext, prepared: PreparedPush): Promise<PreparedPush> {
  // The index was wrong, so nothing it recorded is trusted: the daemon's closure.
  const walked = prepared.fromIndex.size === 0 ? prepared : await walk(ctx, prepared.roots, false);
  const plan = await makePlan(ctx, walked, prepared.planning, true);
  return {
    ...prepared,
    closure: walked.closure,
    fromIndex: walked.fromIndex,
    plan,
    summary: summarizePlan(plan),
  };
}

interface Walked {
  closure: readonly PathInfo[];
  fromIndex: ReadonlySet<string>;
  /** What the index said about the paths in fromIndex, by hash part (the plan reuses it). */
  presence?: ReadonlyMap<string, IndexedPresence>;
}

/**
 * The closure of `roots`. With `useIndex`, the cached paths' infos come from the local
 * index where it recorded them: a cached closure then costs the daemon one request per
 * root, not one per path. Their references are what the cache's narinfos say, which is
 * what a cached path needs; a path the plan uploads gets the daemon's info (freshInfos).
 */
async function walk(
  ctx: PushContext,
  roots: readonly string[],
  useIndex: boolean,
): Promise<Walked> {
  const index = useIndex ? ctx.index : undefined;
  const storeDir = ctx.store.storeDir;
  const fromIndex = new Set<string>();
  const presence = new Map<string, IndexedPresence>();
  const known =
    index?.getPresentWithPathInfo === undefined
      ? undefined
      : (paths: readonly string[]) => {
          const found = new Map<string, PathInfo>();
          const recorded = index.getPresentWithPathInfo!(paths.map(hashPartFast));
          if (recorded.size === 0) return found;
          for (const p of paths) {
            const hp = hashPartFast(p);
            const row = recorded.get(hp);
            const info =
              row === undefined ? undefined : pathInfoFromJson(p, row.pathInfo, storeDir);
            if (info === undefined) continue;
            found.set(p, info);
            fromIndex.add(p);
            presence.set(hp, {
              narinfoTime: new Date(row!.narinfoTime),
              pruneMark: row!.pruneMark,
            });
          }
          return found;
        };
  const closure = await ctx.store.closure(roots, known);
  return { closure, fromIndex, presence };
}

/**
 * Replace the recorded infos of paths the plan uploads (the index said the cache had them,
 * the bucket said no) with the daemon's, in the plan and the closure. Returns undefined
 * when one of them references other paths now: then the walk was not the daemon's closure.
 */
async function freshInfos(
  ctx: PushContext,
  plan: PushPlan,
  walked: Walked,
): Promise<Walked | undefined> {
  const stale = plan.toUpload.filter((i) => walked.fromIndex.has(i.path));
  if (stale.length === 0) return walked;
  const fresh = new Map(
    (await ctx.store.pathInfos(stale.map((i) => i.path))).map((i) => [i.path, i]),
  );
  const same = (a: readonly string[], b: readonly string[]) =>
    a.length === b.length && a.every((x, i) => x === b[i]);
  if (stale.some((i) => !same(i.references, fresh.get(i.path)!.references))) return undefined;
  const swap = (i: PathInfo) => fresh.get(i.path) ?? i;
  plan.toUpload = plan.toUpload.map(swap);
  const fromIndex = new Set(walked.fromIndex);
  for (const p of fresh.keys()) fromIndex.delete(p);
  return { ...walked, closure: walked.closure.map(swap), fromIndex };
}

function makePlan(
  ctx: PushContext,
  { closure, presence }: Walked,
  opts: PlanningOptions,
  ignoreIndex: boolean,
): Promise<PushPlan> {
  const now = opts.now ?? (() => new Date());
  return planPush(
    closure,
    {
      knownPresent: (hps) => {
        // Paths whose recorded info the walk used were read with their presence already.
        const found = new Map<string, IndexedPresence>();
        const ask = presence === undefined ? hps : hps.filter((hp) => !presence.has(hp));
        for (const hp of hps) {
          const p = presence?.get(hp);
          if (p !== undefined) found.set(hp, p);
        }
        for (const [hp, e] of ctx.index?.getPresentMany(ask) ?? []) {
          found.set(hp, { narinfoTime: new Date(e.narinfoTime), pruneMark: e.pruneMark });
        }
        return found;
      },
      remotePresent: (hps) => remoteNarInfos(ctx.blobs, hps),
    },
    {
      storeDir: ctx.store.storeDir,
      skipSignedByKeys: opts.skipSignedByKeys,
      ignoreIndex,
      exclude: opts.exclude,
      refreshBefore:
        opts.refreshAfterMs === undefined
          ? undefined
          : new Date(now().getTime() - opts.refreshAfterMs),
    },
  );
}

/** The hash part of a store path of this push's store. */
export function hashPartIn(ctx: PushContext, path: string): string {
  return storePathHashPart(path, ctx.store.storeDir);
}
