/**
 * Checks on single values. Each returns a problem (a sentence fragment saying what is wrong
 * and what is expected) or undefined. They never echo secrets; callers decide what to show.
 */
import { TomlDate } from 'smol-toml';
import { hasControlChar } from '../util/text.js';

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

/**
 * S3 bucket naming rules (AWS general-purpose buckets, also enforced by MinIO, Ceph RGW,
 * Garage and R2): 3-63 characters of lowercase letters, digits, dots and hyphens, starting
 * and ending with a letter or digit, no "..", not shaped like an IP address.
 */
export function checkBucketName(name: string): string | undefined {
  const rule = 'bucket names are 3-63 lowercase letters, digits, dots and hyphens';
  if (name.length < 3 || name.length > 63) return `is ${name.length} characters long; ${rule}`;
  const bad = /[^a-z0-9.-]/.exec(name);
  if (bad) {
    const what = /[A-Z]/.test(bad[0]) ? 'uppercase letters' : JSON.stringify(bad[0]);
    return `contains ${what}; ${rule}`;
  }
  if (!/^[a-z0-9]/.test(name) || !/[a-z0-9]$/.test(name)) {
    return 'must start and end with a lowercase letter or digit';
  }
  if (name.includes('..')) return 'must not contain ".."';
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) return 'must not be formatted as an IP address';
  return undefined;
}

export function checkRegion(region: string): string | undefined {
  if (region.trim() === '') return 'must not be empty (e.g. "us-east-1", "garage" or "auto")';
  if (/\s/.test(region) || hasControlChar(region))
    return 'must not contain whitespace or control characters';
  return undefined;
}

/**
 * The endpoint must be an absolute http(s) URL without credentials, query or fragment.
 * Returns the normalised URL (no trailing slash) or a problem. Credentials in the URL are
 * never echoed: the problem names only the scheme and host.
 */
export function checkEndpoint(
  raw: string,
): { ok: true; url: string } | { ok: false; problem: string } {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    // Only echo the value when it cannot be hiding credentials.
    const shown = raw.includes('@') ? '(value hidden: it contains "@")' : JSON.stringify(raw);
    return {
      ok: false,
      problem: `${shown} is not a URL; expected one like "http://127.0.0.1:3900" or "https://s3.example.com"`,
    };
  }
  const safe = `${u.protocol}//${u.host}`;
  if (u.username !== '' || u.password !== '') {
    return {
      ok: false,
      problem: `${safe}: credentials in the URL are not allowed; use AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or a credentials file`,
    };
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    return {
      ok: false,
      problem: `${JSON.stringify(raw)} uses ${u.protocol}; expected an http:// or https:// URL`,
    };
  }
  if (u.hostname === '') return { ok: false, problem: `${JSON.stringify(raw)} has no host` };
  if (u.search !== '' || u.hash !== '') {
    return {
      ok: false,
      problem: `${safe}: a query string or fragment is not allowed in the endpoint`,
    };
  }
  const path = u.pathname.replace(/\/+$/, '');
  return { ok: true, url: `${u.protocol}//${u.host}${path}` };
}

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
