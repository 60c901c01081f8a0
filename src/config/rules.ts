/**
 * Checks on single values. Each returns a problem (a sentence fragment saying what is wrong
 * and what is expected) or undefined. They never echo secrets; callers decide what to show.
 */
import { TomlDate } from 'smol-toml';

/** A short, safe rendering of a non-secret TOML value for error messages. */
export function describeValue(raw: unknown): string {
  if (typeof raw === 'string') {
    const s = raw.length > 80 ? `${raw.slice(0, 77)}...` : raw;
    return JSON.stringify(s);
  }
  if (typeof raw === 'number' || typeof raw === 'boolean' || typeof raw === 'bigint') {
    return String(raw);
  }
  if (raw instanceof TomlDate) return `a date (${raw.toISOString()})`;
  if (Array.isArray(raw)) return `an array of ${raw.length}`;
  if (raw !== null && typeof raw === 'object') return 'a table';
  return String(raw);
}

/** What kind of TOML value it is, for values we must not show. */
export function describeKind(raw: unknown): string {
  if (typeof raw === 'string') return 'a string';
  if (typeof raw === 'number') return Number.isInteger(raw) ? 'an integer' : 'a float';
  if (typeof raw === 'boolean') return 'a boolean';
  return describeValue(raw);
}

export { checkBucketName, checkEndpoint, checkRegion } from '../util/s3-rules.js';

/** Edit distance counting a swap of neighbours as one edit, for "did you mean". */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        v = Math.min(v, d[i - 2]![j - 2]! + 1);
      }
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest known name, if close enough to be a likely typo. */
export function suggest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const dist = editDistance(name.toLowerCase(), k);
    if (dist < bestD) [best, bestD] = [k, dist];
  }
  const allowed = name.length <= 4 ? 1 : Math.max(2, Math.floor(name.length / 5));
  return best !== undefined && bestD <= allowed ? best : undefined;
}
