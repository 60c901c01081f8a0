/**
 * The first half of a push: the closure of the roots and the plan for it (what to upload,
 * what the cache has, what upstream serves, what is excluded, what to refresh), as a value.
 * Nothing is written here: `--dry-run` prints this value and executePlan() runs it.
 */
import { storePathHashPart } from '../nix/store-path.js';
import type { PathInfo } from '../store/path-info.js';
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
  const closure = await ctx.store.closure(roots);
  emit({ type: 'closure', roots: roots.length, paths: closure.length });
  const plan = await makePlan(ctx, closure, planning, planning.ignoreIndex ?? false);
  const summary = summarizePlan(plan);
  emit({ type: 'plan', summary });
  return { roots, closure, plan, summary, planning };
}

/** Plan the same closure again, asking the bucket about every path (the index was wrong). */
export async function replan(ctx: PushContext, prepared: PreparedPush): Promise<PreparedPush> {
  const plan = await makePlan(ctx, prepared.closure, prepared.planning, true);
  return { ...prepared, plan, summary: summarizePlan(plan) };
}

function makePlan(
  ctx: PushContext,
  closure: readonly PathInfo[],
  opts: PlanningOptions,
  ignoreIndex: boolean,
): Promise<PushPlan> {
  const now = opts.now ?? (() => new Date());
  return planPush(
    closure,
    {
      knownPresent: (hps) => {
        const found = new Map<string, IndexedPresence>();
        for (const [hp, e] of ctx.index?.getPresentMany(hps) ?? []) {
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
