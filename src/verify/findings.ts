/**
 * What `--verify` can find wrong with a cache, as data: one finding per problem, with the
 * object key it is about and what is wrong. Pure.
 *
 * Damage makes `--verify` exit 1: Nix would fail (or refuse) to substitute the path. A
 * notice is reported but does not: a bucket is shared with other tools and with uploads in
 * progress (a NAR is written before its narinfo), so an object Loft did not expect is not
 * by itself a broken cache.
 */
export type FindingKind =
  | 'cache-info'
  | 'unparsable-narinfo'
  | 'wrong-store-path'
  | 'untrusted-signature'
  | 'missing-nar'
  | 'nar-size'
  | 'missing-reference'
  | 'file-hash'
  | 'nar-hash'
  | 'unreadable-nar'
  | 'foreign-object'
  | 'orphan-nar'
  | 'upstream-reference';

export type Severity = 'damage' | 'notice';

export const FINDING_KINDS: Readonly<Record<FindingKind, { severity: Severity; label: string }>> = {
  'cache-info': { severity: 'damage', label: 'nix-cache-info missing or wrong' },
  'unparsable-narinfo': { severity: 'damage', label: 'narinfos that do not parse' },
  'wrong-store-path': { severity: 'damage', label: 'narinfos for another store path' },
  'untrusted-signature': {
    severity: 'damage',
    label: 'narinfos not signed by a trusted key',
  },
  'missing-nar': { severity: 'damage', label: 'NARs missing' },
  'nar-size': { severity: 'damage', label: 'NARs whose size differs from FileSize' },
  'missing-reference': { severity: 'damage', label: 'references without a narinfo' },
  'file-hash': { severity: 'damage', label: 'NARs whose bytes differ from FileHash' },
  'nar-hash': {
    severity: 'damage',
    label: 'NARs that decompress to other than NarHash/NarSize',
  },
  'unreadable-nar': { severity: 'damage', label: 'NARs that do not decompress' },
  'foreign-object': { severity: 'notice', label: 'objects that are not part of a Nix cache' },
  'orphan-nar': { severity: 'notice', label: 'NARs no narinfo names' },
  'upstream-reference': {
    severity: 'notice',
    label: 'references left to an upstream cache (skip_signed_by_keys)',
  },
};

export interface Finding {
  kind: FindingKind;
  /** The object the finding is about (a narinfo key for most). */
  key: string;
  /** What is wrong, for people. */
  detail: string;
  /** The store path, when the narinfo said (or its key implies) which one. */
  storePath?: string;
  /** The narinfo's hash part, when the finding is about a narinfo or its NAR. */
  hashPart?: string;
  /** For a missing object (NAR, reference's narinfo): its key, so it can be asked again. */
  missingKey?: string;
  /** For a missing reference: its store path. */
  reference?: string;
}

export function isDamage(f: Finding): boolean {
  return FINDING_KINDS[f.kind].severity === 'damage';
}

/** Count per kind, in FINDING_KINDS order, kinds with none left out. */
export function countByKind(findings: readonly Finding[]): { kind: FindingKind; count: number }[] {
  const counts = new Map<FindingKind, number>();
  for (const f of findings) counts.set(f.kind, (counts.get(f.kind) ?? 0) + 1);
  return (Object.keys(FINDING_KINDS) as FindingKind[])
    .filter((k) => counts.has(k))
    .map((k) => ({ kind: k, count: counts.get(k)! }));
}
