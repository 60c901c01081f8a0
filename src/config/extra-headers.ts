/**
 * Extra HTTP headers sent with every S3 request (auth proxies such as Cloudflare Access).
 *
 * Two sources, merged: `[s3.extra_headers]` in the config file, and environment variables
 * `LOFT_EXTRA_HEADER_<NAME>` (prefix stripped, `_` becomes `-`: `LOFT_EXTRA_HEADER_CF_ACCESS_CLIENT_ID`
 * sets `cf-access-client-id`). Header names are case-insensitive, so both sources are
 * matched case-insensitively and the merged names are lower case. When both set the same
 * header the environment wins: the environment is the secret channel (the NixOS module
 * exports `extraHeadersFile` contents there), while the file may be world-readable.
 *
 * Values are secrets: they never appear in errors, warnings, logs or `util.inspect` output.
 */

import { checkHeaderName, checkHeaderValue } from '../util/http-header.js';

// The rules are shared with the S3 store's guard; config re-exports them for its reference.
export {
  checkHeaderName,
  checkHeaderValue,
  RESERVED_HEADER_NAMES,
  RESERVED_HEADER_PREFIXES,
} from '../util/http-header.js';

export type Env = Readonly<Record<string, string | undefined>>;

export const EXTRA_HEADER_ENV_PREFIX = 'LOFT_EXTRA_HEADER_';

export type HeaderSource = 'file' | 'env';

/** A problem with one header, by name only (never its value). */
export interface HeaderIssue {
  /** `s3.extra_headers.<Name>` or `env.LOFT_EXTRA_HEADER_<X>`. */
  path: string;
  message: string;
}

/** The header name a `LOFT_EXTRA_HEADER_*` variable sets, or undefined for other variables. */
export function headerNameFromEnv(variable: string): string | undefined {
  if (!variable.startsWith(EXTRA_HEADER_ENV_PREFIX)) return undefined;
  return variable.slice(EXTRA_HEADER_ENV_PREFIX.length).replace(/_/g, '-').toLowerCase();
}

function tomlKey(name: string): string {
  return /^[A-Za-z0-9_-]+$/.test(name) ? name : JSON.stringify(name);
}

interface Entry {
  name: string;
  value: string;
  source: HeaderSource;
  origin: string;
}

const inspectSymbol = Symbol.for('nodejs.util.inspect.custom');

/**
 * The merged, validated headers. Values are held in a private field so they stay out of
 * `util.inspect`, `JSON.stringify` and spread copies; `toRecord()` is for the S3 client only.
 */
export class ExtraHeaders {
  readonly #entries: ReadonlyMap<string, Entry>;

  constructor(entries: ReadonlyMap<string, Entry> = new Map()) {
    this.#entries = entries;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Lower-case header names, sorted. */
  names(): string[] {
    return [...this.#entries.keys()].sort();
  }

  /** Where each header came from (for a debug line); no values. */
  describe(): { name: string; source: HeaderSource; origin: string }[] {
    return this.names().map((n) => {
      const e = this.#entries.get(n)!;
      return { name: n, source: e.source, origin: e.origin };
    });
  }

  /** name -> value, lower-case names. Pass it to the S3 store; never log it. */
  toRecord(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [n, e] of this.#entries) out[n] = e.value;
    return out;
  }

  /** The values, so a logger can mask them wherever they might turn up. */
  secretValues(): string[] {
    return [...this.#entries.values()].map((e) => e.value);
  }

  toJSON(): Record<string, string> {
    return Object.fromEntries(this.names().map((n) => [n, '[redacted]']));
  }

  toString(): string {
    return `ExtraHeaders(${this.names().join(', ')})`;
  }

  [inspectSymbol](): string {
    return `ExtraHeaders { ${this.names()
      .map((n) => `${n}: [redacted]`)
      .join(', ')} }`;
  }
}

export interface MergeResult {
  headers: ExtraHeaders;
  issues: HeaderIssue[];
  warnings: HeaderIssue[];
}

/**
 * Validate and merge the config file's headers with `LOFT_EXTRA_HEADER_*` variables from
 * `env`. Every bad header is reported (by name); the environment overrides the file for the
 * same header, with a warning naming both.
 */
export function mergeExtraHeaders(
  fileHeaders: Readonly<Record<string, string>>,
  env: Env,
): MergeResult {
  const issues: HeaderIssue[] = [];
  const warnings: HeaderIssue[] = [];
  const fromFile = new Map<string, Entry>();
  const fromEnv = new Map<string, Entry>();

  for (const [name, value] of Object.entries(fileHeaders)) {
    const path = `s3.extra_headers.${tomlKey(name)}`;
    const bad = checkHeaderName(name) ?? checkHeaderValue(value);
    if (bad) {
      issues.push({ path, message: bad });
      continue;
    }
    const key = name.toLowerCase();
    const prior = fromFile.get(key);
    if (prior) {
      issues.push({
        path,
        message: `set twice, also as ${JSON.stringify(prior.name)} (header names are case-insensitive)`,
      });
      continue;
    }
    fromFile.set(key, { name, value, source: 'file', origin: path });
  }

  for (const variable of Object.keys(env).sort()) {
    const value = env[variable];
    const name = headerNameFromEnv(variable);
    if (name === undefined || value === undefined) continue;
    const path = `env.${variable}`;
    const bad =
      name === ''
        ? `names no header; use ${EXTRA_HEADER_ENV_PREFIX}<NAME> with _ for -, e.g. ${EXTRA_HEADER_ENV_PREFIX}CF_ACCESS_CLIENT_ID`
        : (checkHeaderName(name) ?? checkHeaderValue(value));
    if (bad) {
      issues.push({ path, message: bad });
      continue;
    }
    const prior = fromEnv.get(name);
    if (prior) {
      issues.push({ path, message: `sets ${name}, which ${prior.origin.slice(4)} also sets` });
      continue;
    }
    fromEnv.set(name, { name, value, source: 'env', origin: path });
  }

  const merged = new Map(fromFile);
  for (const [key, e] of fromEnv) {
    const overridden = fromFile.get(key);
    if (overridden) {
      warnings.push({
        path: overridden.origin,
        message: `also set by ${e.origin.slice(4)}; the environment's value is used`,
      });
    }
    merged.set(key, e);
  }
  return {
    headers: new ExtraHeaders(new Map([...merged].sort(([a], [b]) => (a < b ? -1 : 1)))),
    issues,
    warnings,
  };
}
