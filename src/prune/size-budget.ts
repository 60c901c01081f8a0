/**
 * The size policy of a prune plan: when what the age policy keeps is still over
 * `maxSizeBytes`, keep the closures of the most recently refreshed narinfos (newest first,
 * each closure whole) while the total stays within the target, and stop at the first that
 * does not fit. Protected closures count first, even if that leaves the cache over target.
 * Pure; works on the planner's node indices (plan.ts).
 */
import type { ListedObject } from '../storage/port.js';
import type { RefGraph } from './graph.js';
import type { PlanNode, PrunePlan } from './plan-types.js';
import { targetBytes, type PrunePolicy } from './policy.js';

export interface SizeBudgetInput {
  policy: PrunePolicy;
  graph: RefGraph;
  nodes: readonly PlanNode[];
  /** `.ls` listings by hash part (a narinfo's bytes include its listing). */
  listings: ReadonlyMap<string, ListedObject>;
  nars: ReadonlyMap<string, ListedObject>;
  /** The narinfos the age policy keeps, and those that must stay whatever the budget. */
  keepByAge: Uint8Array;
  mustKeep: Uint8Array;
  /** Planning only the NAR cleanup: the size policy evicts nothing. */
  keepNarInfos: boolean;
  /** Bytes that stay whatever is kept (unreferenced objects in their grace period). */
  fixedBytes: number;
  isOrphan: (narKey: string) => boolean;
  /** A kept narinfo whose NAR URL is not a plain key (then no NAR can be deleted). */
  blockerIn: (kept: Uint8Array) => string | undefined;
  warnings: string[];
}

/** The narinfos kept after the size policy (`keepByAge` when it did not trigger). */
export function applySizeBudget(s: SizeBudgetInput): {
  kept: Uint8Array;
  size: PrunePlan['size'];
} {
  const { policy, graph, nodes, nars, keepByAge, mustKeep, fixedBytes, isOrphan, blockerIn } = s;
  const n = nodes.length;
  const time = (i: number) => nodes[i]!.obj.lastModified.getTime();
  const nodeBytes = (i: number) =>
    nodes[i]!.obj.size + (s.listings.get(nodes[i]!.hashPart)?.size ?? 0);

  /** Counted bytes left if exactly the marked narinfos stay. */
  const bytesIfKept = (kept: Uint8Array) => {
    let b = fixedBytes;
    const blocked = blockerIn(kept) !== undefined;
    const keptNars = new Set<string>();
    for (let i = 0; i < n; i++) {
      if (!kept[i]) continue;
      b += nodeBytes(i);
      const k = nodes[i]!.read.narKey;
      if (k) keptNars.add(k);
    }
    for (const o of nars.values()) {
      if (isOrphan(o.key)) continue; // counted above if young, deleted if old
      if (blocked || keptNars.has(o.key)) b += o.size;
    }
    return b;
  };

  let kept = keepByAge;
  let size: PrunePlan['size'];
  if (policy.maxSizeBytes !== undefined) {
    const target = targetBytes(policy)!;
    const bytesAfterAge = bytesIfKept(keepByAge);
    size = {
      maxBytes: policy.maxSizeBytes,
      targetBytes: target,
      bytesAfterAge,
      triggered: false,
      cutoff: undefined,
      protectedBytes: 0,
    };
    if (bytesAfterAge > policy.maxSizeBytes && !s.keepNarInfos) {
      size.triggered = true;
      // A blocker anywhere makes every NAR undeletable: count them all as fixed.
      const allNarsFixed = blockerIn(keepByAge) !== undefined;
      const countedNars = new Set<string>();
      let bytes = fixedBytes;
      if (allNarsFixed) for (const o of nars.values()) if (!isOrphan(o.key)) bytes += o.size;
      const chosen = new Uint8Array(n);
      /** Add nodes (not yet chosen) to the kept set; returns their cost, or adds nothing
       * and returns undefined when they would take the total over `limit`. */
      const take = (ids: readonly number[], limit: number) => {
        let c = 0;
        const newNars: string[] = [];
        for (const i of ids) {
          c += nodeBytes(i);
          const k = nodes[i]!.read.narKey;
          if (!allNarsFixed && k && !countedNars.has(k)) {
            const o = nars.get(k);
            if (o) {
              c += o.size;
              countedNars.add(k); // undone below if the closure does not fit
              newNars.push(k);
            }
          }
        }
        if (bytes + c > limit) {
          for (const k of newNars) countedNars.delete(k);
          return undefined;
        }
        for (const i of ids) chosen[i] = 1;
        bytes += c;
        return c;
      };
      // What must stay counts first, whatever the budget: pins, leases, young narinfos,
      // the unreadable, what changed during the prune; each with its closure.
      const protectedIds: number[] = [];
      for (let i = 0; i < n; i++) if (mustKeep[i]) protectedIds.push(i);
      take(protectedIds, Infinity);
      size.protectedBytes = bytes;
      if (bytes > target) {
        s.warnings.push(
          `the cache stays over the size target: ${bytes} bytes must stay (closures that are ` +
            `pinned, named by a live push lease or younger than ${Math.round(policy.graceMs / 60_000)} ` +
            'minutes, unreadable narinfos, unreferenced objects in their grace period)',
        );
      }
      const candidates: number[] = [];
      for (let i = 0; i < n; i++) if (keepByAge[i] && !chosen[i]) candidates.push(i);
      candidates.sort((a, b) => {
        const d = time(b) - time(a);
        return d !== 0 ? d : nodes[a]!.hashPart < nodes[b]!.hashPart ? -1 : 1;
      });
      for (const i of candidates) {
        if (chosen[i]) continue;
        if (take(graph.closureOutside(i, chosen), target) === undefined) {
          size.cutoff = nodes[i]!.obj.lastModified;
          break;
        }
      }
      kept = chosen;
    }
  }
  return { kept, size };
}
