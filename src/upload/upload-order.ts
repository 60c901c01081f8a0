/**
 * In which order NARs start uploading. A narinfo waits for its NAR and for every
 * reference's narinfo, and publication costs one round trip per level of the reference
 * graph; so a path that many levels of dependents wait on should be stored early, or the
 * publication chain cannot start until the uploads are nearly done (a 200-deep chain
 * uploaded biggest-first publishes almost nothing until its bottom path happens to finish).
 * Big NARs still want to start early, so they do not trail at the end.
 *
 * The rank is an estimate of the time that hangs on a path once it starts: its own upload
 * at a nominal throughput, plus one nominal round trip per level of dependents above it.
 * Highest rank first. The nominal figures only weigh size against depth; a wrong guess
 * costs time, never correctness (PublishOrder alone decides when a narinfo may be written).
 */
export interface OrderNode {
  path: string;
  narSize: number;
  references: readonly string[];
}

/** Bytes per second one upload is assumed to move. */
const NOMINAL_BYTES_PER_S = 20e6;
/** Seconds one level of publication is assumed to take. */
const NOMINAL_LEVEL_S = 0.05;

/**
 * For each path, the number of levels of dependents (within `nodes`) above it: 0 for a
 * path nothing here references, else 1 + the most of its dependents. Iterative, so a
 * chain of any depth is fine; references outside `nodes` and self-references are ignored.
 */
export function levelsAbove(nodes: readonly OrderNode[]): Map<string, number> {
  const inSet = new Set(nodes.map((n) => n.path));
  const dependents = new Map<string, string[]>();
  const pendingDeps = new Map<string, number>();
  for (const n of nodes) pendingDeps.set(n.path, 0);
  for (const n of nodes) {
    for (const ref of new Set(n.references)) {
      if (ref === n.path || !inSet.has(ref)) continue;
      const list = dependents.get(ref);
      if (list) list.push(n.path);
      else dependents.set(ref, [n.path]);
      pendingDeps.set(ref, pendingDeps.get(ref)! + 1);
    }
  }
  // Kahn's algorithm from the top: a path's level is known once all its dependents' are.
  const level = new Map<string, number>();
  const ready = nodes.filter((n) => pendingDeps.get(n.path) === 0).map((n) => n.path);
  for (const p of ready) level.set(p, 0);
  const refsOf = new Map(nodes.map((n) => [n.path, n.references]));
  while (ready.length > 0) {
    const p = ready.pop()!;
    const l = level.get(p)!;
    for (const ref of new Set(refsOf.get(p))) {
      if (ref === p || !inSet.has(ref)) continue;
      level.set(ref, Math.max(level.get(ref) ?? 0, l + 1));
      const left = pendingDeps.get(ref)! - 1;
      pendingDeps.set(ref, left);
      if (left === 0) ready.push(ref);
    }
  }
  // A cycle (impossible in a Nix store) leaves paths unvisited: treat them as the top.
  for (const n of nodes) if (!level.has(n.path)) level.set(n.path, 0);
  return level;
}

/** The paths in upload order: highest rank first, ties by size then path (stable). */
export function uploadOrder<T extends OrderNode>(nodes: readonly T[]): T[] {
  const levels = levelsAbove(nodes);
  const rank = (n: T) => n.narSize / NOMINAL_BYTES_PER_S + levels.get(n.path)! * NOMINAL_LEVEL_S;
  return [...nodes]
    .map((n) => ({ n, r: rank(n) }))
    .sort((a, b) => b.r - a.r || b.n.narSize - a.n.narSize || (a.n.path < b.n.path ? -1 : 1))
    .map((x) => x.n);
}
