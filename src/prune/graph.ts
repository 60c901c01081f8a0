/**
 * The reference graph of a cache's narinfos (nodes are hash parts) and the two walks
 * pruning needs: closures, and a deletion order that keeps what remains closure-complete.
 * Pure.
 */

/** References of each narinfo in the cache, restricted to narinfos in the cache. */
export type RefGraph = ReadonlyMap<string, readonly string[]>;

/** Everything reachable from `roots` (roots included), added to `into`. */
export function addClosure(
  graph: RefGraph,
  roots: Iterable<string>,
  into: Set<string>,
): Set<string> {
  const stack: string[] = [];
  for (const r of roots) {
    if (graph.has(r) && !into.has(r)) {
      into.add(r);
      stack.push(r);
    }
  }
  while (stack.length > 0) {
    const n = stack.pop()!;
    for (const ref of graph.get(n) ?? []) {
      if (graph.has(ref) && !into.has(ref)) {
        into.add(ref);
        stack.push(ref);
      }
    }
  }
  return into;
}

export interface Layering {
  /**
   * `doomed` split into layers, referrers first: every referrer (within `doomed`) of a node
   * is in an earlier layer, so no node of a layer references another node of the same
   * layer. Deleting layer by layer, in any order and any grouping within a layer, never
   * leaves a remaining narinfo whose reference is gone. Each layer is sorted.
   */
  layers: string[][];
  /** Nodes on or below a reference cycle (impossible in a real store): not orderable. */
  unordered: string[];
}

/**
 * Order `doomed` for deletion. `doomed` must be closed under referrers within the graph
 * (whoever references a doomed node is doomed too), which holds when it is the complement
 * of a closure-closed kept set.
 */
export function deletionLayers(graph: RefGraph, doomed: ReadonlySet<string>): Layering {
  // referrers left to delete before each node may go (self-references do not count)
  const waiting = new Map<string, number>();
  for (const n of doomed) waiting.set(n, 0);
  for (const n of doomed) {
    for (const ref of new Set(graph.get(n) ?? [])) {
      if (ref !== n && waiting.has(ref)) waiting.set(ref, waiting.get(ref)! + 1);
    }
  }
  const layers: string[][] = [];
  let current = [...doomed].filter((n) => waiting.get(n) === 0);
  const placed = new Set<string>();
  while (current.length > 0) {
    current.sort();
    layers.push(current);
    const next: string[] = [];
    for (const n of current) {
      placed.add(n);
      for (const ref of new Set(graph.get(n) ?? [])) {
        if (ref === n || !waiting.has(ref)) continue;
        const left = waiting.get(ref)! - 1;
        waiting.set(ref, left);
        if (left === 0) next.push(ref);
      }
    }
    current = next;
  }
  const unordered = [...doomed].filter((n) => !placed.has(n)).sort();
  return { layers, unordered };
}
