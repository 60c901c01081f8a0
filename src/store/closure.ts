/**
 * Closures: walk references from the roots, asking for path info as paths are discovered
 * (many requests in flight, so the pool pipelines them), then order the result so every
 * path comes after everything it references.
 */
import type { PathInfo } from './path-info.js';

/** Requests in flight at most during a walk (the pool bounds what reaches the daemon). */
const WALK_CONCURRENCY = 512;

/**
 * Path infos the caller already holds for some of `paths` (the local index's, for paths
 * the cache has): used instead of a lookup. Called once per batch of newly found paths.
 */
export type KnownPathInfos = (paths: readonly string[]) => ReadonlyMap<string, PathInfo>;

/**
 * The closure of `roots` as a map from path to info. `lookup` rejects for a path that is
 * not valid; the walk stops at the first failure. Roots are always looked up; any other
 * path `known` answers for is taken from it, and its references are walked the same way.
 */
export function walkClosure(
  roots: readonly string[],
  lookup: (path: string) => Promise<PathInfo>,
  known?: KnownPathInfos,
): Promise<Map<string, PathInfo>> {
  const infos = new Map<string, PathInfo>();
  const seen = new Set<string>(roots);
  const queue = [...seen];
  let inFlight = 0;
  let failed = false;
  // Newly seen references: those `known` has are walked here, the rest queued for lookup.
  const discover = (refs: readonly string[]) => {
    let fresh = refs.filter((r) => !seen.has(r));
    while (fresh.length > 0) {
      for (const r of fresh) seen.add(r);
      const have = known?.(fresh) ?? new Map<string, PathInfo>();
      const next: string[] = [];
      for (const r of fresh) {
        const info = have.get(r);
        if (info === undefined) {
          queue.push(r);
          continue;
        }
        infos.set(r, info);
        for (const x of info.references) if (!seen.has(x)) next.push(x);
      }
      fresh = [...new Set(next)];
    }
  };
  return new Promise((resolve, reject) => {
    const fail = (e: unknown) => {
      if (!failed) {
        failed = true;
        reject(e);
      }
    };
    const pump = () => {
      while (!failed && inFlight < WALK_CONCURRENCY && queue.length > 0) {
        const path = queue.pop()!;
        inFlight++;
        lookup(path).then(
          (info) => {
            inFlight--;
            if (failed) return;
            infos.set(path, info);
            try {
              discover(info.references);
            } catch (e) {
              // `known` failed (the local index, say): the walk fails with it.
              fail(e);
              return;
            }
            if (inFlight === 0 && queue.length === 0) resolve(infos);
            else pump();
          },
          (e: unknown) => {
            inFlight--;
            fail(e);
          },
        );
      }
    };
    if (queue.length === 0) resolve(infos);
    else pump();
  });
}

/**
 * Order path infos so references come first (self-references ignored; references outside
 * the set ignored). Deterministic: ties broken by path. Iterative, so deep chains are fine.
 */
export function topoSort(infos: ReadonlyMap<string, PathInfo>): PathInfo[] {
  const out: PathInfo[] = [];
  const state = new Map<string, 'open' | 'done'>();
  for (const start of [...infos.keys()].sort()) {
    if (state.has(start)) continue;
    state.set(start, 'open');
    const stack: { info: PathInfo; next: number }[] = [{ info: infos.get(start)!, next: 0 }];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const refs = top.info.references;
      if (top.next < refs.length) {
        const r = refs[top.next++]!;
        const ri = infos.get(r);
        // 'open' means a cycle other than a self-reference, which a valid store cannot have;
        // skipping the edge keeps the walk finite.
        if (ri === undefined || state.has(r)) continue;
        state.set(r, 'open');
        stack.push({ info: ri, next: 0 });
      } else {
        stack.pop();
        state.set(top.info.path, 'done');
        out.push(top.info);
      }
    }
  }
  return out;
}
