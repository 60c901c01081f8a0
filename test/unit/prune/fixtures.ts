/** Small builders for prune planner tests: synthetic bucket listings and narinfo readings. */
import type { ListedObject, PendingUpload } from '../../../src/storage/port.js';
import type { NarInfoRead } from '../../../src/prune/narinfo-read.js';
import type { PruneInput } from '../../../src/prune/plan.js';
import { DAY_MS, type PrunePolicy } from '../../../src/prune/policy.js';

const NIX32 = '0123456789abcdfghijklmnpqrsvwxyz';

/** A valid hash part (32 nix32 chars) from a number: distinct numbers, distinct parts. */
export function hp(i: number): string {
  let s = '';
  let v = i;
  do {
    s = NIX32[v % 32] + s;
    v = Math.floor(v / 32);
  } while (v > 0);
  return s.padStart(32, '0');
}

/** A NAR key (52 nix32 chars) from a number. */
export function narKeyOf(i: number): string {
  return `nar/${hp(i).padStart(52, 'z')}.nar.zst`;
}

export const NOW = new Date('2026-06-01T00:00:00Z');
export const daysAgo = (d: number) => new Date(NOW.getTime() - d * DAY_MS);
export const hoursAgo = (h: number) => new Date(NOW.getTime() - h * 3_600_000);

export const POLICY: PrunePolicy = {
  retentionMs: 30 * DAY_MS,
  // No grace period for young narinfos, unless a test asks for it.
  graceMs: 0,
  maxSizeBytes: undefined,
  targetPercentage: 80,
  orphanGraceMs: DAY_MS,
  staleUploadMs: DAY_MS,
};

export interface PathSpec {
  /** References by path number. */
  refs?: number[];
  /** Age of the narinfo, in days. */
  age: number;
  narSize?: number;
  narInfoSize?: number;
  /** A `.ls` of this size, if any. */
  listing?: number;
  /** Share another path's NAR (by number) instead of having one's own. */
  narOf?: number;
  /** The narinfo does not parse (with these salvaged references). */
  unreadable?: boolean;
  /** A URL that is not a plain key. */
  badUrl?: string;
}

/**
 * A bucket of paths numbered by their keys in `paths`, with their NARs and listings, plus
 * `nix-cache-info`. Returns the planner input (objects and readings) and the key helpers.
 */
export function bucket(
  paths: Record<number, PathSpec>,
  extra: {
    objects?: ListedObject[];
    uploads?: PendingUpload[];
    policy?: Partial<PrunePolicy>;
  } = {},
): PruneInput {
  const objects: ListedObject[] = [{ key: 'nix-cache-info', size: 50, lastModified: daysAgo(400) }];
  const narInfos = new Map<string, NarInfoRead>();
  for (const [k, spec] of Object.entries(paths)) {
    const i = Number(k);
    const key = `${hp(i)}.narinfo`;
    const lastModified = daysAgo(spec.age);
    objects.push({ key, size: spec.narInfoSize ?? 500, lastModified });
    const nar = narKeyOf(spec.narOf ?? i);
    if (spec.narOf === undefined) {
      objects.push({ key: nar, size: spec.narSize ?? 10_000, lastModified });
    }
    if (spec.listing !== undefined) {
      objects.push({ key: `${hp(i)}.ls`, size: spec.listing, lastModified });
    }
    const read: NarInfoRead = {
      references: (spec.refs ?? []).map(hp),
      narKey: spec.badUrl === undefined ? nar : undefined,
    };
    if (spec.badUrl !== undefined) read.unresolvedUrl = spec.badUrl;
    if (spec.unreadable) read.problem = 'line 3: blank line';
    narInfos.set(key, read);
  }
  objects.push(...(extra.objects ?? []));
  return {
    now: NOW,
    policy: { ...POLICY, ...extra.policy },
    objects,
    narInfos,
    uploads: extra.uploads ?? [],
  };
}
