/**
 * Push planning, pure over injected lookups: which paths of a closure to upload, which the
 * cache already has, and which are left to an upstream cache. No I/O happens here except
 * through the `lookups` the caller passes, so the same plan logic serves the one-shot push,
 * the service's batches, and tests.
 */
import type { PathInfo } from '../store/path-info.js';
import { storePathHashPart } from '../nix/store-path.js';

/** What the cache said about one narinfo. */
export interface RemoteNarInfo {
  /** When the narinfo was written or last refreshed (drives pruning's refresh-on-use). */
  lastModified: Date | undefined;
}

/** What the local index recorded about one narinfo. */
export interface IndexedPresence {
  narinfoTime: Date;
  /** The prune mark it was last confirmed under (README, "Leases"), if it was. */
  pruneMark?: string | undefined;
}

export interface PlanLookups {
  /** Hash parts the local index records as present. */
  knownPresent(
    hashParts: string[],
  ): Promise<Map<string, IndexedPresence>> | Map<string, IndexedPresence>;
  /**
   * Ask the cache which of these narinfos exist. Must throw on any error other than
   * "not found": a failed check is never taken to mean "missing".
   */
  remotePresent(hashParts: string[]): Promise<Map<string, RemoteNarInfo>>;
}

export interface PlanOptions {
  /** The store directory the closure's paths are in. */
  storeDir: string;
  /** Key names (the part before ':' of a signature) of upstream caches. */
  skipSignedByKeys: readonly string[];
  /** Ignore the local index (`--force-scan`): every candidate is checked remotely. */
  ignoreIndex?: boolean;
  /**
   * Refresh-on-use cutoff (now minus half the prune retention): cached paths whose narinfo
   * is older must be refreshed, so pruning keeps what this push relies on. Index entries
   * older than it are confirmed remotely first (another machine may have refreshed them,
   * or pruned them).
   */
  refreshBefore?: Date;
  /** `include_patterns`/`exclude_patterns`: paths kept out of the cache, like upstream ones. */
  exclude?: (storePath: string) => boolean;
}

export interface CachedPath {
  info: PathInfo;
  /** How we know: the local index, or the cache itself (then with its narinfo's age). */
  source: 'index' | 'remote';
  lastModified: Date | undefined;
  /** From the index: the prune mark it was confirmed under (settled.ts). */
  pruneMark?: string | undefined;
}

export interface PushPlan {
  /** Paths to upload, dependencies first. */
  toUpload: PathInfo[];
  alreadyCached: CachedPath[];
  /** Paths signed by an upstream key: the upstream cache serves them and their closures. */
  upstream: PathInfo[];
  /** Paths the include/exclude patterns keep out: not uploaded, their referrers still are. */
  excluded: PathInfo[];
  /** Cached paths whose narinfo is older than `refreshBefore` (confirmed remotely). */
  toRefresh: CachedPath[];
}

export function signatureKeyName(sig: string): string {
  const i = sig.indexOf(':');
  return i < 0 ? '' : sig.slice(0, i);
}

export function isUpstream(info: PathInfo, skipSignedByKeys: ReadonlySet<string>): boolean {
  return info.sigs.some((s) => skipSignedByKeys.has(signatureKeyName(s)));
}

/**
 * Plan a push of `closure` (PathInfo for every path, dependencies first, as
 * LocalStore.closure returns it).
 */
export async function planPush(
  closure: readonly PathInfo[],
  lookups: PlanLookups,
  options: PlanOptions,
): Promise<PushPlan> {
  const hashPartOf = (path: string) => storePathHashPart(path, options.storeDir);
  const skip = new Set(options.skipSignedByKeys);
  const upstream: PathInfo[] = [];
  const excluded: PathInfo[] = [];
  const candidates: PathInfo[] = [];
  for (const info of closure) {
    if (isUpstream(info, skip)) upstream.push(info);
    else if (options.exclude?.(info.path)) excluded.push(info);
    else candidates.push(info);
  }

  const hashParts = candidates.map((i) => hashPartOf(i.path));
  const known = options.ignoreIndex
    ? new Map<string, IndexedPresence>()
    : await lookups.knownPresent(hashParts);
  const cached = new Map<string, CachedPath>();
  const unknown: PathInfo[] = [];
  candidates.forEach((info, i) => {
    const k = known.get(hashParts[i]!);
    if (k) {
      cached.set(info.path, {
        info,
        source: 'index',
        lastModified: k.narinfoTime,
        pruneMark: k.pruneMark,
      });
    } else unknown.push(info);
  });

  const remote =
    unknown.length === 0
      ? new Map<string, RemoteNarInfo>()
      : await lookups.remotePresent(unknown.map((i) => hashPartOf(i.path)));
  const uploading = new Set<string>();
  for (const info of unknown) {
    const found = remote.get(hashPartOf(info.path));
    if (found) cached.set(info.path, { info, source: 'remote', lastModified: found.lastModified });
    else uploading.add(info.path);
  }

  // The index may be stale: another machine's prune can delete a path we recorded. A new
  // narinfo must never point at a missing reference, so the index-known paths that uploads
  // reference directly are confirmed remotely; any that are gone join the upload, and their
  // own references are checked in turn. (A present narinfo implies its closure is present.)
  const byPath = new Map(closure.map((i) => [i.path, i]));
  const isOld = (c: CachedPath) =>
    options.refreshBefore !== undefined &&
    (c.lastModified === undefined || c.lastModified < options.refreshBefore);
  // Old index entries are suspects from the start: they may be refreshed or gone by now.
  const initial = [...cached.values()].filter((c) => c.source === 'index' && isOld(c));
  let suspects = new Set(initial.map((c) => c.info.path));
  let frontier = [...uploading];
  for (;;) {
    for (const path of frontier) {
      for (const ref of byPath.get(path)?.references ?? []) {
        if (cached.get(ref)?.source === 'index') suspects.add(ref);
      }
    }
    if (suspects.size === 0) break;
    const confirmed = await lookups.remotePresent([...suspects].map(hashPartOf));
    frontier = [];
    for (const path of suspects) {
      const found = confirmed.get(hashPartOf(path));
      if (found) {
        cached.set(path, {
          ...cached.get(path)!,
          source: 'remote',
          lastModified: found.lastModified,
        });
      } else {
        cached.delete(path);
        uploading.add(path);
        frontier.push(path);
      }
    }
    suspects = new Set();
  }
  const alreadyCached = closure.flatMap((i) => cached.get(i.path) ?? []);
  // Keep the closure's order: dependencies first.
  return {
    toUpload: closure.filter((i) => uploading.has(i.path)),
    alreadyCached,
    upstream,
    excluded,
    toRefresh: alreadyCached.filter((c) => c.source === 'remote' && isOld(c)),
  };
}

export interface PlanSummary {
  toUpload: { paths: number; narBytes: number };
  alreadyCached: { paths: number; narBytes: number };
  upstream: { paths: number; narBytes: number };
  excluded: { paths: number; narBytes: number };
}

export function summarizePlan(plan: PushPlan): PlanSummary {
  const sum = (infos: readonly PathInfo[]) => ({
    paths: infos.length,
    narBytes: infos.reduce((n, i) => n + i.narSize, 0),
  });
  return {
    toUpload: sum(plan.toUpload),
    alreadyCached: sum(plan.alreadyCached.map((c) => c.info)),
    upstream: sum(plan.upstream),
    excluded: sum(plan.excluded),
  };
}
