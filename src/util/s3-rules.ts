/**
 * The rules for an S3 target's bucket, endpoint and region, shared by the configuration
 * (src/config) and the storage layer (src/storage), so a value one accepts the other
 * accepts too. Each check returns a problem (what is wrong and what is expected, never
 * echoing credentials) or undefined. Pure.
 */
import { hasControlChar } from './text.js';

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

/**
 * Any non-empty name without whitespace, control characters or "/" (it is part of SigV4's
 * credential scope): AWS regions are lowercase words and digits, but MinIO and Ceph RGW
 * accept names of the operator's choosing.
 */
export function checkRegion(region: string): string | undefined {
  if (region.trim() === '') return 'must not be empty (e.g. "us-east-1", "garage" or "auto")';
  if (/\s/.test(region) || hasControlChar(region))
    return 'must not contain whitespace or control characters';
  if (region.includes('/')) return 'must not contain "/"';
  return undefined;
}

/**
 * The endpoint must be an absolute http(s) URL with a host and without credentials, query
 * or fragment. Returns the normalised URL (no trailing slash) or a problem. Credentials in
 * the URL are never echoed: the problem names only the scheme and host.
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
