/**
 * The reference graph of a cache's narinfos and the two walks pruning needs: closures, and
 * a deletion order that keeps what remains closure-complete. Pure.
 *
 * Nodes are numbered (hash part <-> index) and references stored as one flat array, so the
 * walks touch typed arrays instead of string-keyed maps: a million narinfos plan in seconds.
 */

export class RefGraph {
  private constructor(
    /** Hash part of each node. */
    readonly names: readonly string[],
    /** Node of each hash part. */
    readonly index: ReadonlyMap<string, number>,
    /** References of node i are targets[start[i]] .. targets[start[i + 1] - 1]. */
    private readonly start: Int32Array,
    private readonly targets: Int32Array,
  ) {}

  /**
   * Build from each node's referenced hash parts. References to hash parts that are not
   * nodes, self-references and duplicates are dropped.
   */
  static build(
    names: readonly string[],
    refsOf: (i: number) => readonly string[],
    index: ReadonlyMap<string, number> = new Map(names.map((n, i) => [n, i])),
  ): RefGraph {
    const start = new Int32Array(names.length + 1);
    const out: number[] = [];
    // lastFrom[j] === i + 1: j is already a reference of node i.
    const lastFrom = new Int32Array(names.length);
    for (let i = 0; i < names.length; i++) {
      start[i] = out.length;
      for (const r of refsOf(i)) {
        const j = index.get(r);
        if (j === undefined || j === i || lastFrom[j] === i + 1) continue;
        lastFrom[j] = i + 1;
        out.push(j);
      }
    }
    start[names.length] = out.length;
    return new RefGraph(names, index, start, Int32Array.from(out));
  }

  get size(): number {
    return this.names.length;
  }

  refs(i: number): Int32Array {
    return this.targets.subarray(this.start[i]!, this.start[i + 1]!);
  }

  /** Mark everything reachable from `roots` (roots included) in `marks`; returns how many were new. */
  mark(roots: Iterable<number>, marks: Uint8Array): number {
    const stack: number[] = [];
    let added = 0;
    for (const r of roots) {
      if (!marks[r]) {
        marks[r] = 1;
        added++;
        stack.push(r);
      }
    }
    while (stack.length > 0) {
      const n = stack.pop()!;
      for (let k = this.start[n]!; k < this.start[n + 1]!; k++) {
        const ref = this.targets[k]!;
        if (!marks[ref]) {
          marks[ref] = 1;
          added++;
          stack.push(ref);
        }
      }
    }
    return added;
  }

  /** The closure of `root` minus the marked nodes, which must be closure-closed. */
  closureOutside(root: number, marked: Uint8Array): number[] {
    if (marked[root]) return [];
    const seen = new Set<number>([root]);
    const stack = [root];
    while (stack.length > 0) {
      const n = stack.pop()!;
      for (let k = this.start[n]!; k < this.start[n + 1]!; k++) {
        const ref = this.targets[k]!;
        if (!marked[ref] && !seen.has(ref)) {
          seen.add(ref);
          stack.push(ref);
        }
      }
    }
    return [...seen];
  }

  /**
   * The closure of `roots` by hash part, reading the references of the nodes in
   * `overrides` from there instead (a narinfo rewritten since the graph was built).
   */
  closureOfNames(
    roots: Iterable<string>,
    overrides: ReadonlyMap<string, readonly string[]> = new Map(),
  ): Set<string> {
    const out = new Set<string>();
    const stack: string[] = [];
    const visit = (n: string) => {
      if (!out.has(n) && (this.index.has(n) || overrides.has(n))) {
        out.add(n);
        stack.push(n);
      }
    };
    for (const r of roots) visit(r);
    while (stack.length > 0) {
      const n = stack.pop()!;
      const over = overrides.get(n);
      if (over) for (const r of over) visit(r);
      else for (const j of this.refs(this.index.get(n)!)) visit(this.names[j]!);
    }
    return out;
  }
}

export interface Layering {
  /**
   * The doomed nodes split into layers, referrers first: every referrer (among the doomed)
   * of a node is in an earlier layer, so no node of a layer references another node of the
   * same layer. Deleting layer by layer, in any order and any grouping within a layer,
   * never leaves a remaining narinfo whose reference is gone. Each layer is sorted by name.
   */
  layers: number[][];
  /** Nodes on or below a reference cycle (impossible in a real store): not orderable. */
  unordered: number[];
}

/**
 * Order the nodes marked in `doomed` for deletion. The doomed set must be closed under
 * referrers (whoever references a doomed node is doomed too), which holds when it is the
 * complement of a closure-closed kept set.
 */
export function deletionLayers(graph: RefGraph, doomed: Uint8Array): Layering {
  const n = graph.size;
  // Referrers left to delete before each node may go.
  const waiting = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    if (!doomed[i]) continue;
    for (const ref of graph.refs(i)) if (doomed[ref]) waiting[ref]!++;
  }
  const byName = (a: number, b: number) => (graph.names[a]! < graph.names[b]! ? -1 : 1);
  const layers: number[][] = [];
  let current: number[] = [];
  for (let i = 0; i < n; i++) if (doomed[i] && waiting[i] === 0) current.push(i);
  const placed = new Uint8Array(n);
  while (current.length > 0) {
    current.sort(byName);
    layers.push(current);
    const next: number[] = [];
    for (const i of current) {
      placed[i] = 1;
      for (const ref of graph.refs(i)) {
        if (!doomed[ref]) continue;
        if (--waiting[ref]! === 0) next.push(ref);
      }
    }
    current = next;
  }
  const unordered: number[] = [];
  for (let i = 0; i < n; i++) if (doomed[i] && !placed[i]) unordered.push(i);
  return { layers, unordered: unordered.sort(byName) };
}
