/**
 * The prune planner: pure over a listing of the bucket, the parsed narinfos and a clock.
 * It decides what goes and in which order; `prune.ts` does the I/O.
 *
 * - A narinfo is live when it was written or refreshed within the retention period
 *   (LastModified >= now - retention). Live narinfos, narinfos written or changed after the
 *   listing began (`pinned`), narinfos that do not parse, and the closures of all of them
 *   are kept; every other narinfo is deleted.
 * - Protected, whatever their age and the size budget, with their closures: pins, paths a
 *   live push lease names, narinfos younger than the grace period, and (once a prune intent
 *   is written) every narinfo the intent does not name (`onlyDelete`).
 * - Size policy: when what remains is still over `maxSizeBytes`, keep the closures of the
 *   most recently refreshed narinfos (newest first, each with its whole closure) while the
 *   total stays within the target, and stop at the first that does not fit: a closure is
 *   kept or dropped whole, never split. Protected closures count first, even if that leaves
 *   the cache over target (size-budget.ts).
 * - Narinfos are deleted in layers, referrers first (see graph.ts), each with its `.ls`.
 * - NARs that no remaining narinfo references are deleted: at once when their narinfos are
 *   deleted by this plan (`released`), after the grace period when no narinfo ever pointed
 *   at them (interrupted or in-progress uploads). Listings without a narinfo likewise.
 * - Multipart uploads older than `staleUploadMs` are aborted.
 * - `nix-cache-info` and every key the planner does not recognise are left alone.
 */
import type { ListedObject, PendingUpload } from '../storage/port.js';
import {
  NARINFO_SUFFIX,
  hashPartOfListingKey,
  hashPartOfNarInfoKey,
  isNarInfoKey,
  isNarKey,
} from '../storage/keys.js';
import { RefGraph, deletionLayers } from './graph.js';
import {
  add,
  tally,
  type DeletionReason,
  type PlanNode,
  type PlannedNarInfo,
  type PruneInput,
  type PrunePlan,
  type ProtectionReason,
} from './plan-types.js';
import { checkPolicy } from './policy.js';
import { applySizeBudget } from './size-budget.js';

export type {
  DeletionReason,
  PlannedNarInfo,
  PruneInput,
  PrunePlan,
  ProtectionReason,
  Tally,
} from './plan-types.js';

export function planPrune(input: PruneInput): PrunePlan {
  const policy = checkPolicy(input.policy);
  const now = input.now.getTime();
  const pinned = input.pinned ?? new Set<string>();
  const pins = input.pins ?? new Set<string>();
  const leased = input.leased ?? new Set<string>();
  const leasedNars = input.leasedNars ?? new Set<string>();
  const released = input.released ?? new Set<string>();
  const warnings: string[] = [];

  // Sort the listing into what prune understands; everything else is left alone.
  const nodes: PlanNode[] = [];
  const index = new Map<string, number>();
  const listings = new Map<string, ListedObject>();
  const nars = new Map<string, ListedObject>();
  const untouched = tally();
  for (const o of input.objects) {
    const hp = o.key.endsWith(NARINFO_SUFFIX) ? hashPartOfNarInfoKey(o.key) : undefined;
    if (hp !== undefined) {
      const read = input.narInfos.get(o.key);
      // A narinfo that vanished since the listing is not ours to count.
      if (read && !index.has(hp)) {
        // A flat copy: a string cut from the key is 4x slower as a map key (measured).
        const own = Buffer.from(hp, 'latin1').toString('latin1');
        index.set(own, nodes.length);
        nodes.push({ hashPart: own, obj: o, read });
      }
      continue;
    }
    const lhp = hashPartOfListingKey(o.key);
    if (lhp !== undefined) listings.set(lhp, o);
    else if (isNarKey(o.key)) nars.set(o.key, o);
    else add(untouched, o.size); // CACHE_INFO_KEY, logs, anything unknown
  }
  const n = nodes.length;
  const graph = RefGraph.build(
    nodes.map((x) => x.hashPart),
    (i) => nodes[i]!.read.references,
    index,
  );
  const time = (i: number) => nodes[i]!.obj.lastModified.getTime();

  // Roots: live by age, pinned (new since the listing), unreadable (never delete the unknown).
  const unreadable: { key: string; problem: string }[] = [];
  const live: number[] = [];
  const must: number[] = [];
  const byReason: Record<ProtectionReason, number[]> = { pinned: [], leased: [], young: [] };
  const unannounced: number[] = [];
  const youngFrom = now - policy.graceMs;
  nodes.forEach((x, i) => {
    if (pins.has(x.hashPart)) byReason.pinned.push(i);
    if (leased.has(x.hashPart)) byReason.leased.push(i);
    if (policy.graceMs > 0 && time(i) >= youngFrom) byReason.young.push(i);
    if (input.onlyDelete && !input.onlyDelete.has(x.hashPart)) unannounced.push(i);
    if (x.read.problem !== undefined) {
      unreadable.push({ key: x.obj.key, problem: x.read.problem });
      must.push(i);
    } else if (pinned.has(x.obj.key)) {
      must.push(i);
    } else if (time(i) >= now - policy.retentionMs) {
      live.push(i);
    }
  });
  must.push(...byReason.pinned, ...byReason.leased, ...byReason.young, ...unannounced);
  unreadable.sort((a, b) => (a.key < b.key ? -1 : 1));
  for (const u of unreadable) warnings.push(`${u.key} does not parse; kept: ${u.problem}`);

  const keepByAge = new Uint8Array(n);
  if (input.keepNarInfos) keepByAge.fill(1);
  else graph.mark([...must, ...live], keepByAge);
  const mustKeep = new Uint8Array(n);
  graph.mark(must, mustKeep);

  // Which NARs no kept narinfo can be shown not to need.
  const referencedByAny = new Set<string>();
  for (const x of nodes) if (x.read.narKey) referencedByAny.add(x.read.narKey);
  const blockerIn = (kept: Uint8Array) => {
    for (let i = 0; i < n; i++) {
      const u = nodes[i]!.read.unresolvedUrl;
      if (kept[i] && u !== undefined) return `${nodes[i]!.obj.key} (URL ${JSON.stringify(u)})`;
    }
    return undefined;
  };
  const graceCutoff = now - policy.orphanGraceMs;
  const isOrphan = (k: string) => !referencedByAny.has(k) && !released.has(k);
  const youngOrphanNars = [...nars.values()].filter(
    (o) => isOrphan(o.key) && o.lastModified.getTime() >= graceCutoff,
  );
  const orphanListingObjs = [...listings].filter(([hp]) => !index.has(hp)).map(([, o]) => o);
  const youngOrphanListings = orphanListingObjs.filter(
    (o) => o.lastModified.getTime() >= graceCutoff,
  );
  const fixedBytes =
    youngOrphanListings.reduce((b, o) => b + o.size, 0) +
    youngOrphanNars.reduce((b, o) => b + o.size, 0);

  const budget = applySizeBudget({
    policy,
    graph,
    nodes,
    listings,
    nars,
    keepByAge,
    mustKeep,
    keepNarInfos: input.keepNarInfos === true,
    fixedBytes,
    isOrphan,
    blockerIn,
    warnings,
  });
  let kept = budget.kept;
  const size = budget.size;

  // Order the doomed; anything caught in a reference cycle (only a hand-made bucket has
  // one) cannot be ordered safely, so it and its closure stay.
  const doomedOf = (k: Uint8Array) => k.map((x) => (x ? 0 : 1));
  let layering = deletionLayers(graph, doomedOf(kept));
  if (layering.unordered.length > 0) {
    warnings.push(
      `${layering.unordered.length} narinfos are on or below a reference cycle and are kept: ` +
        layering.unordered
          .slice(0, 5)
          .map((i) => nodes[i]!.hashPart)
          .join(', '),
    );
    kept = new Uint8Array(kept);
    graph.mark(layering.unordered, kept);
    layering = deletionLayers(graph, doomedOf(kept));
  }

  const deleting = {
    expired: tally(),
    sizeEvicted: tally(),
    listings: tally(),
    releasedNars: tally(),
    orphanNars: tally(),
    orphanListings: tally(),
    staleUploads: 0,
  };
  const narInfoLayers = layering.layers.map((layer) =>
    layer.map((i): PlannedNarInfo => {
      const x = nodes[i]!;
      const reason: DeletionReason = keepByAge[i] ? 'size' : 'expired';
      add(reason === 'size' ? deleting.sizeEvicted : deleting.expired, x.obj.size);
      const listing = listings.get(x.hashPart);
      if (listing) add(deleting.listings, listing.size);
      return {
        key: x.obj.key,
        hashPart: x.hashPart,
        size: x.obj.size,
        lastModified: x.obj.lastModified,
        reason,
        listing,
        narKey: x.read.narKey,
      };
    }),
  );

  // NARs: kept when a remaining narinfo uses them (or when that cannot be known).
  const blockedBy = blockerIn(kept);
  if (blockedBy) warnings.push(`no NAR is deleted: ${blockedBy} is not a plain object key`);
  const keptNarKeys = new Set<string>();
  let keptCount = 0;
  for (let i = 0; i < n; i++) {
    if (!kept[i]) continue;
    keptCount++;
    const k = nodes[i]!.read.narKey;
    if (k) keptNarKeys.add(k);
  }
  const releasedNars: ListedObject[] = [];
  const orphanNars: ListedObject[] = [];
  const youngOrphans = tally();
  for (const o of nars.values()) {
    if (keptNarKeys.has(o.key) || blockedBy || leasedNars.has(o.key)) continue;
    if (input.onlyDeleteNars && !input.onlyDeleteNars.has(o.key)) continue;
    if (!isOrphan(o.key)) {
      releasedNars.push(o);
      add(deleting.releasedNars, o.size);
    } else if (o.lastModified.getTime() < graceCutoff) {
      orphanNars.push(o);
      add(deleting.orphanNars, o.size);
    } else {
      add(youngOrphans, o.size);
    }
  }
  const orphanListings: ListedObject[] = [];
  for (const o of orphanListingObjs) {
    if (o.lastModified.getTime() < graceCutoff) {
      orphanListings.push(o);
      add(deleting.orphanListings, o.size);
    } else {
      add(youngOrphans, o.size);
    }
  }

  // Only uploads to keys a cache writer makes are ours to abort; a bucket may be shared.
  const staleCutoff = now - policy.staleUploadMs;
  const staleUploads: PendingUpload[] = [];
  let keptUploads = 0;
  for (const u of input.uploads ?? []) {
    const ours =
      isNarKey(u.key) || isNarInfoKey(u.key) || hashPartOfListingKey(u.key) !== undefined;
    if (ours && u.initiated !== undefined && u.initiated.getTime() < staleCutoff) {
      staleUploads.push(u);
    } else keptUploads++;
  }
  deleting.staleUploads = staleUploads.length;

  const before = {
    narInfos: tally(),
    listings: tally(),
    nars: tally(),
    bytes: 0,
  };
  for (const x of nodes) add(before.narInfos, x.obj.size);
  for (const o of listings.values()) add(before.listings, o.size);
  for (const o of nars.values()) add(before.nars, o.size);
  before.bytes = before.narInfos.bytes + before.listings.bytes + before.nars.bytes;
  const deletedBytes =
    deleting.expired.bytes +
    deleting.sizeEvicted.bytes +
    deleting.listings.bytes +
    deleting.releasedNars.bytes +
    deleting.orphanNars.bytes +
    deleting.orphanListings.bytes;

  const byKey = (a: ListedObject, b: ListedObject) => (a.key < b.key ? -1 : 1);
  return {
    now: input.now,
    policy,
    narInfoLayers,
    releasedNars: releasedNars.sort(byKey),
    orphanNars: orphanNars.sort(byKey),
    orphanListings: orphanListings.sort(byKey),
    staleUploads,
    before,
    deleting,
    bytesAfter: before.bytes - deletedBytes,
    kept: {
      narInfos: keptCount,
      live: live.length,
      pinned: nodes.filter((x) => pinned.has(x.obj.key)).length,
      protectedBy: protectionCounts(graph, n, byReason, kept),
      notAnnounced: unannounced.length,
      unreadable,
      youngOrphans,
      uploads: keptUploads,
      narDeletionBlockedBy: blockedBy,
    },
    untouched,
    size,
    warnings,
    graph,
  };
}

/** Every narinfo deletion of a plan, in order. */
export function narInfoDeletions(plan: PrunePlan): PlannedNarInfo[] {
  return plan.narInfoLayers.flat();
}

/** Kept narinfos in the closures of each reason's roots; a narinfo counts for the first. */
function protectionCounts(
  graph: RefGraph,
  n: number,
  byReason: Record<ProtectionReason, number[]>,
  kept: Uint8Array,
): Record<ProtectionReason, number> {
  const seen = new Uint8Array(n);
  const out: Record<ProtectionReason, number> = { pinned: 0, leased: 0, young: 0 };
  for (const reason of ['pinned', 'leased', 'young'] as const) {
    const mark = new Uint8Array(n);
    graph.mark(byReason[reason], mark);
    for (let i = 0; i < n; i++) {
      if (mark[i] && !seen[i] && kept[i]) {
        seen[i] = 1;
        out[reason]++;
      }
    }
  }
  return out;
}
