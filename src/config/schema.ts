/**
 * The configuration schema: every key of loft.toml with its type, default, constraints and
 * description. It is the single source: the loader decodes with it, and the README's
 * configuration reference is rendered from it (`src/config/reference.ts`).
 *
 * `seed: true` marks the keys of the documented loft.toml contract; the few keys Loft adds
 * beyond it are `seed: false` and say so in the reference.
 *
 * Over 400 lines because it is one table, a key per entry: its length is its data.
 */
import { isAbsolute, join, resolve } from 'node:path';
import {
  checkBucketName,
  checkEndpoint,
  checkRegion,
  describeKind,
  describeValue,
} from './rules.js';
import {
  COMPRESSIONS,
  COMPRESSION_LEVELS,
  type CompressionName,
  type LevelRange,
} from '../util/compression-rules.js';
import { SCHEDULE_FORMS, tryParseSchedule, type Schedule } from './schedule.js';
import type { Env } from './extra-headers.js';
import { parsePublicKey } from '../nix/signing.js';
import { parseListen, type ListenAddress } from './listen.js';

export type { Env };

export interface DecodeContext {
  /** Directory of the config file: relative paths in it resolve against this. */
  configDir: string;
  env: Env;
}

export type Decoded<T> = { ok: true; value: T } | { ok: false; problem: string };

export type Section = 's3' | 'loft';

export interface Field<T> {
  readonly section: Section;
  readonly key: string;
  /** The TOML type as the reference shows it. */
  readonly type: string;
  readonly description: string;
  /** Part of the seed's documented loft.toml (false: a Loft addition). */
  readonly seed: boolean;
  readonly required: boolean;
  /** How the default reads in the reference ("required" fields have none). */
  readonly defaultDoc: string;
  /** The value when the key is absent (may fail, e.g. no HOME for a default path). */
  defaultValue(ctx: DecodeContext): Decoded<T>;
  decode(raw: unknown, ctx: DecodeContext): Decoded<T>;
}

const ok = <T>(value: T): Decoded<T> => ({ ok: true, value });
const fail = <T = never>(problem: string): Decoded<T> => ({ ok: false, problem });

interface Spec<T> {
  section: Section;
  key: string;
  type: string;
  description: string;
  seed?: boolean;
  decode(raw: unknown, ctx: DecodeContext): Decoded<T>;
}

function required<T>(spec: Spec<T>): Field<T> {
  return {
    seed: true,
    ...spec,
    required: true,
    defaultDoc: 'required',
    defaultValue: () => fail(`is required but missing`),
  };
}

function withDefault<T>(
  spec: Spec<T> & { default: T | ((ctx: DecodeContext) => Decoded<T>); defaultDoc?: string },
): Field<T> {
  const { default: dflt, defaultDoc, ...rest } = spec;
  return {
    seed: true,
    ...rest,
    required: false,
    defaultDoc: defaultDoc ?? (dflt === undefined ? 'unset' : `\`${JSON.stringify(dflt)}\``),
    defaultValue: (ctx) =>
      typeof dflt === 'function' ? (dflt as (c: DecodeContext) => Decoded<T>)(ctx) : ok(dflt),
  };
}

// ---- decoders ---------------------------------------------------------------------------

const got = (raw: unknown) => `got ${describeValue(raw)}`;

function str(check?: (s: string) => string | undefined) {
  return (raw: unknown): Decoded<string> => {
    if (typeof raw !== 'string') return fail(`expected a string, ${got(raw)}`);
    const problem = check?.(raw);
    return problem ? fail(`${describeValue(raw)} ${problem}`) : ok(raw);
  };
}

/** A header value: one line of visible ASCII, not empty. */
function cacheControl(raw: unknown): Decoded<string | undefined> {
  return str((s) =>
    /^[\x20-\x7e]+$/.test(s) && s.trim() !== ''
      ? undefined
      : 'must be a non-empty header value on one line (visible ASCII)',
  )(raw);
}

function bool(raw: unknown): Decoded<boolean> {
  return typeof raw === 'boolean' ? ok(raw) : fail(`expected true or false, ${got(raw)}`);
}

function int(min: number, max: number) {
  return (raw: unknown): Decoded<number> =>
    typeof raw === 'number' && Number.isInteger(raw) && raw >= min && raw <= max
      ? ok(raw)
      : fail(`expected an integer from ${min} to ${max}, ${got(raw)}`);
}

/** An integer field's type (with its range, for the reference) and decoder, from one pair. */
function integer(min: number, max: number) {
  return { type: `integer (${min}-${max})`, decode: int(min, max) };
}

function positiveNumber(raw: unknown): Decoded<number | undefined> {
  return typeof raw === 'number' && Number.isFinite(raw) && raw > 0
    ? ok(raw)
    : fail(`expected a number greater than 0, ${got(raw)}`);
}

function oneOf<const V extends string>(values: readonly V[]) {
  return (raw: unknown): Decoded<V> =>
    typeof raw === 'string' && (values as readonly string[]).includes(raw)
      ? ok(raw as V)
      : fail(`expected one of ${values.map((v) => JSON.stringify(v)).join(', ')}, ${got(raw)}`);
}

/** `~/x` -> $HOME/x; relative paths resolve against the config file's directory. */
export function resolveConfigPath(p: string, ctx: DecodeContext): Decoded<string> {
  if (p === '~' || p.startsWith('~/')) {
    const home = ctx.env.HOME;
    if (!home) return fail(`${describeValue(p)} starts with ~ but HOME is not set`);
    return ok(join(home, p.slice(1)));
  }
  return ok(isAbsolute(p) ? resolve(p) : resolve(ctx.configDir, p));
}

function path(raw: unknown, ctx: DecodeContext): Decoded<string> {
  if (typeof raw !== 'string') return fail(`expected a path (string), ${got(raw)}`);
  if (raw.trim() === '') return fail('expected a path, got an empty string');
  if (raw.includes('\0')) return fail('the path contains a NUL byte');
  return resolveConfigPath(raw, ctx);
}

function stringList(raw: unknown): Decoded<string[]> {
  if (!Array.isArray(raw)) return fail(`expected an array of strings, ${got(raw)}`);
  const out: string[] = [];
  for (const [i, item] of raw.entries()) {
    if (typeof item !== 'string' || item.trim() === '') {
      return fail(`item ${i + 1}: expected a non-empty string, ${got(item)}`);
    }
    out.push(item);
  }
  return ok(out);
}

/** A list of regular expressions, each compiled here so a bad one is named at load time. */
function regexList(raw: unknown): Decoded<string[]> {
  const r = stringList(raw);
  if (!r.ok) return r;
  for (const [i, p] of r.value.entries()) {
    try {
      new RegExp(p);
    } catch (e) {
      return fail(
        `item ${i + 1}: ${JSON.stringify(p)} is not a valid regular expression (${(e as Error).message})`,
      );
    }
  }
  return r;
}

/** A table of string -> string whose values are secret: problems name keys, never values. */
function secretStringTable(raw: unknown): Decoded<Record<string, string>> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return fail(`expected a table of header names to string values, got ${describeKind(raw)}`);
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== 'string') {
      return fail(
        `${JSON.stringify(k)}: expected a string value, got ${describeKind(v)} (value not shown)`,
      );
    }
    out[k] = v;
  }
  return ok(out);
}

/** Default for local_cache_path: the service's state directory, else the XDG state dir. */
export function defaultLocalCachePath(ctx: DecodeContext): Decoded<string> {
  const e = ctx.env;
  const state = e.STATE_DIRECTORY?.split(':')[0];
  if (state && isAbsolute(state)) return ok(join(state, 'cache.db'));
  if (e.XDG_STATE_HOME && isAbsolute(e.XDG_STATE_HOME)) {
    return ok(join(e.XDG_STATE_HOME, 'loft', 'cache.db'));
  }
  if (e.HOME && isAbsolute(e.HOME)) return ok(join(e.HOME, '.local', 'state', 'loft', 'cache.db'));
  return fail(
    'is not set and has no default: none of STATE_DIRECTORY, XDG_STATE_HOME or HOME is set; set loft.local_cache_path',
  );
}

export const DEFAULT_DAEMON_SOCKET = '/nix/var/nix/daemon-socket/socket';

// ---- the schema -------------------------------------------------------------------------

export { COMPRESSIONS, COMPRESSION_LEVELS, type CompressionName };
export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

const LEVEL_RANGES = Object.entries(COMPRESSION_LEVELS).filter(
  (e): e is [string, LevelRange] => e[1] !== undefined,
);
const LEVEL_RANGES_DOC = LEVEL_RANGES.map(([c, r]) => `${c} ${r.min}-${r.max}`).join(', ');

export const schema = {
  's3.bucket': required({
    section: 's3',
    key: 'bucket',
    type: 'string',
    description:
      'Name of the bucket that holds the cache. S3 naming rules apply: 3-63 lowercase letters, digits, dots and hyphens.',
    decode: str(checkBucketName),
  }),
  's3.region': withDefault({
    section: 's3',
    key: 'region',
    type: 'string',
    default: 'us-east-1',
    description:
      'Region used to sign requests. Must match the server: `garage` for a default Garage, `auto` for R2, any value for MinIO and Ceph RGW.',
    decode: str(checkRegion),
  }),
  's3.endpoint': withDefault<string | undefined>({
    section: 's3',
    key: 'endpoint',
    type: 'string (URL)',
    default: undefined,
    defaultDoc: "unset (AWS S3's regional endpoint)",
    description:
      'Base URL of the S3 API, `http://` or `https://`, without credentials, query or fragment (e.g. `http://garage.example.internal:3900`). Custom endpoints use path-style addressing.',
    decode: (raw) => {
      if (typeof raw !== 'string') return fail(`expected a URL string, ${got(raw)}`);
      const r = checkEndpoint(raw);
      return r.ok ? ok(r.url) : fail(r.problem);
    },
  }),
  's3.extra_headers': withDefault<Record<string, string>>({
    section: 's3',
    key: 'extra_headers',
    type: 'table of strings',
    default: {},
    defaultDoc: 'empty',
    description:
      'Extra HTTP headers sent with every S3 request, added after SigV4 signing (for auth proxies such as Cloudflare Access). Merged with `LOFT_EXTRA_HEADER_*` environment variables; see below.',
    decode: secretStringTable,
  }),
  's3.max_attempts': withDefault({
    section: 's3',
    key: 'max_attempts',
    ...integer(1, 20),
    seed: false,
    default: 5,
    description:
      'How many times one S3 request is tried before it fails, with exponential backoff and jitter between tries. Only transient failures are retried (5xx, throttling, timeouts, dropped connections).',
  }),

  'loft.upload_threads': withDefault({
    section: 'loft',
    key: 'upload_threads',
    ...integer(1, 256),
    default: 12,
    description:
      'How many store paths are uploaded at once (a push starts with two in flight and allows one more per NAR stored, up to this). Most NARs are small and their time goes to round trips, so parallelism pays even on few cores; memory grows with it for large NARs (threads x parts in flight x part size).',
  }),
  'loft.scan_on_startup': withDefault({
    section: 'loft',
    key: 'scan_on_startup',
    type: 'boolean',
    default: false,
    description:
      'In service mode, upload every valid store path missing from the cache (minus paths signed by `skip_signed_by_keys`) once; the scan resumes after a crash and never repeats after it completed (`--reset-initial-scan` re-arms it). Off by default because a whole store can be many gigabytes.',
    decode: bool,
  }),
  'loft.populate_cache_on_startup': withDefault({
    section: 'loft',
    key: 'populate_cache_on_startup',
    type: 'boolean',
    default: false,
    description:
      'In service mode, fill the local index from the bucket\u2019s narinfo listing before anything else, so later pushes skip paths already cached without asking S3.',
    decode: bool,
  }),
  'loft.local_cache_path': withDefault({
    section: 'loft',
    key: 'local_cache_path',
    type: 'path',
    default: defaultLocalCachePath,
    defaultDoc:
      '`$STATE_DIRECTORY/cache.db` under systemd, else `$XDG_STATE_HOME/loft/cache.db`, else `~/.local/state/loft/cache.db`',
    description:
      'SQLite file with the local index (paths known to be in the cache) and the service\u2019s durable queue. Safe to delete (`--clear-cache`); it is rebuilt from the bucket. The NixOS module uses `/var/lib/loft/cache.db`.',
    decode: path,
  }),
  'loft.compression': withDefault({
    section: 'loft',
    key: 'compression',
    type: '"zstd", "xz" or "none"',
    default: 'zstd' as CompressionName,
    description:
      'How NARs are compressed. zstd is fast and what modern Nix prefers; xz is 50-100x slower for slightly smaller files; `none` (a Loft addition) stores NARs as they are.',
    decode: oneOf(COMPRESSIONS),
  }),
  'loft.compression_level': withDefault<number | undefined>({
    section: 'loft',
    key: 'compression_level',
    type: `integer (${LEVEL_RANGES_DOC})`,
    seed: false,
    default: undefined,
    defaultDoc: "unset (the compressor's default: zstd 3, xz 6)",
    description: `Compression level, by compressor: ${LEVEL_RANGES_DOC}. Higher levels cost much more CPU for a few percent.`,
    decode: int(
      Math.min(...LEVEL_RANGES.map(([, r]) => r.min)),
      Math.max(...LEVEL_RANGES.map(([, r]) => r.max)),
    ),
  }),
  'loft.signing_key_path': withDefault<string | undefined>({
    section: 'loft',
    key: 'signing_key_path',
    type: 'path',
    default: (ctx: DecodeContext) => ok(ctx.env.LOFT_SIGNING_KEY_PATH || undefined),
    defaultDoc: '`$LOFT_SIGNING_KEY_PATH` if set, else unset (narinfos are not signed)',
    description:
      'Nix secret key file (`name:base64`, as made by `nix-store --generate-binary-cache-key`). Every uploaded narinfo is signed with it. Read at start-up; its contents never reach logs. The NixOS module passes it as `LOFT_SIGNING_KEY_PATH` (each systemd unit has its own credentials directory).',
    decode: path,
  }),
  'loft.signing_key_name': withDefault<string | undefined>({
    section: 'loft',
    key: 'signing_key_name',
    type: 'string',
    default: undefined,
    defaultDoc: "unset (the key file's own name)",
    description:
      'Name of the signing key (e.g. `cache.example.org-1`). Optional: a Nix key file carries its name, and when this is set it must match that name (a mismatch is an error). Required only for a key file holding bare base64 without a name.',
    decode: str((s) =>
      s.trim() === '' || s.includes(':') ? 'must be a non-empty key name without ":"' : undefined,
    ),
  }),
  'loft.skip_signed_by_keys': withDefault({
    section: 'loft',
    key: 'skip_signed_by_keys',
    type: 'array of strings',
    default: ['cache.nixos.org-1'],
    description:
      'Key names (e.g. `cache.nixos.org-1`); store paths carrying a signature by any of them came from that upstream cache and are not uploaded. A full public key (`name:base64`) is accepted and reduced to its name. `[]` uploads everything.',
    decode: (raw) => {
      const r = stringList(raw);
      return r.ok ? ok([...new Set(r.value.map((k) => k.split(':')[0]!.trim()))]) : r;
    },
  }),
  'loft.exclude_patterns': withDefault<string[]>({
    section: 'loft',
    key: 'exclude_patterns',
    type: 'array of strings (regular expressions)',
    seed: false,
    default: [],
    defaultDoc: '`[]` (nothing excluded)',
    description:
      'Store paths whose name (the part after `<hash>-`) matches any of these JavaScript regular expressions are not uploaded, by every push (`--upload-path`, `--watch-exec`, the service); like paths left to upstream, the paths referring to them are still published. Searched anywhere in the name: anchor with `^...$` for a whole-name match.',
    decode: regexList,
  }),
  'loft.include_patterns': withDefault<string[]>({
    section: 'loft',
    key: 'include_patterns',
    type: 'array of strings (regular expressions)',
    seed: false,
    default: [],
    defaultDoc: '`[]` (every path)',
    description:
      'When not empty, only store paths whose name matches at least one of these regular expressions are uploaded (and then not if `exclude_patterns` matches); the others are treated as excluded.',
    decode: regexList,
  }),
  'loft.upload_build_logs': withDefault({
    section: 'loft',
    key: 'upload_build_logs',
    type: 'boolean',
    seed: false,
    default: false,
    description:
      'Also upload the build log of each derivation whose output Loft uploads, when the local Nix keeps it (`/nix/var/log/nix/drvs`), to `log/<drv name>` as Nix does, so `nix log` run against the cache shows it. A missing log is skipped.',
    decode: bool,
  }),
  'loft.prune_enabled': withDefault({
    section: 'loft',
    key: 'prune_enabled',
    type: 'boolean',
    default: false,
    description:
      'In service mode, prune the cache on `prune_schedule`. `--prune` runs a prune regardless.',
    decode: bool,
  }),
  'loft.prune_retention_days': withDefault({
    section: 'loft',
    key: 'prune_retention_days',
    ...integer(1, 36500),
    default: 30,
    description:
      'A path is live when its narinfo was written or refreshed within this many days; live paths and their whole closures are kept, everything else is deleted.',
  }),
  'loft.prune_max_size_gb': withDefault<number | undefined>({
    section: 'loft',
    key: 'prune_max_size_gb',
    type: 'number (> 0)',
    default: undefined,
    defaultDoc: 'unset (no size limit)',
    description:
      'Size budget in GB (10^9 bytes). When the cache is larger, the least recently refreshed closures are deleted until it is at most `prune_target_percentage` of this.',
    decode: positiveNumber,
  }),
  'loft.prune_target_percentage': withDefault({
    section: 'loft',
    key: 'prune_target_percentage',
    ...integer(1, 100),
    default: 80,
    description:
      'Percentage of `prune_max_size_gb` that a size-triggered prune shrinks the cache to.',
  }),
  'loft.prune_grace_minutes': withDefault({
    section: 'loft',
    key: 'prune_grace_minutes',
    ...integer(0, 10080),
    default: 10,
    description:
      'Narinfos written or refreshed within this many minutes are never pruned, with their closures, whatever the size budget: writers that take no lease (`nix copy`, other tools) may be publishing on top of them. Loft’s own pushes are protected by their leases, so `0` keeps every closure they publish whole.',
  }),
  'loft.prune_schedule': withDefault<Schedule>({
    section: 'loft',
    key: 'prune_schedule',
    type: 'string',
    default: { kind: 'interval', ms: 86_400_000, text: '24h' },
    defaultDoc: '`"24h"`',
    description: `When the service prunes: ${SCHEDULE_FORMS}. Intervals count from the last prune, which is remembered across restarts.`,
    decode: (raw) => {
      if (typeof raw !== 'string') return fail(`expected a string, ${got(raw)}`);
      const r = tryParseSchedule(raw);
      return r.ok ? ok(r.schedule) : fail(`${r.problem}; expected ${SCHEDULE_FORMS}`);
    },
  }),
  'loft.log_format': withDefault({
    section: 'loft',
    key: 'log_format',
    type: '"text" or "json"',
    seed: false,
    default: 'text' as LogFormat,
    description:
      'Log lines as readable text or as JSON objects, one per line (for journald or CI). `--log-format` overrides it.',
    decode: oneOf(LOG_FORMATS),
  }),
  'loft.progress_interval_seconds': withDefault({
    section: 'loft',
    key: 'progress_interval_seconds',
    ...integer(0, 86_400),
    seed: false,
    default: 10,
    description:
      'When stderr is not a terminal (CI, a pipe, journald), a push writes a progress line this often (an `event: "progress"` line with `--log-format json`); 0 turns the lines off. A terminal gets a live progress line instead.',
  }),
  'loft.write_nar_listing': withDefault({
    section: 'loft',
    key: 'write_nar_listing',
    type: 'boolean',
    seed: false,
    default: false,
    description:
      'Also write `<hash>.ls` file listings next to narinfos, as Nix\u2019s `write-nar-listing` does (used by `nix store ls` on the cache).',
    decode: bool,
  }),
  'loft.daemon_socket': withDefault<string | undefined>({
    section: 'loft',
    key: 'daemon_socket',
    type: 'path',
    seed: false,
    default: undefined,
    defaultDoc: `unset: \`$NIX_DAEMON_SOCKET_PATH\`, else \`${DEFAULT_DAEMON_SOCKET}\`, else \`nix-daemon --stdio\` (root or single-user installs)`,
    description:
      'The nix-daemon socket Loft reads the store through. When set, only this socket is used: a missing one is an error, never a silent fallback to another store.',
    decode: path,
  }),
  'loft.real_store_dir': withDefault<string | undefined>({
    section: 'loft',
    key: 'real_store_dir',
    type: 'path',
    seed: false,
    default: undefined,
    defaultDoc: "unset (the daemon's store directory, `/nix/store`)",
    description:
      'Where the store directory the service watches is on disk, when it differs from the store directory paths are named in: a chroot store served by `nix-daemon --store <root>` keeps `/nix/store` paths under `<root>/nix/store`.',
    decode: path,
  }),
  'loft.queue_max_attempts': withDefault({
    section: 'loft',
    key: 'queue_max_attempts',
    ...integer(1, 100),
    seed: false,
    default: 5,
    description:
      'In service mode, how many times a queued path is tried before it is parked (kept in the queue with its error, shown by `--status`, not retried until it is discovered again). Outages of S3 or the daemon do not count as attempts.',
  }),
  'loft.queue_retry_seconds': withDefault({
    section: 'loft',
    key: 'queue_retry_seconds',
    ...integer(1, 86_400),
    seed: false,
    default: 60,
    description:
      'In service mode, the wait before a failed path is tried again; it doubles with each attempt (with jitter), up to an hour.',
  }),
  'loft.trusted_public_keys': withDefault<readonly string[]>({
    section: 'loft',
    key: 'trusted_public_keys',
    type: 'array of strings',
    seed: false,
    default: [],
    defaultDoc: '`[]` (only the signing key\u2019s own public half)',
    description:
      'Public keys (`name:base64`, as in Nix\u2019s `trusted-public-keys`) whose signatures `--verify` accepts, besides the signing key\u2019s; for caches other machines push to with their own keys.',
    decode: (raw) => {
      const r = stringList(raw);
      if (!r.ok) return r;
      for (const k of r.value) {
        try {
          parsePublicKey(k.trim(), 'trusted_public_keys');
        } catch (e) {
          return fail(`${describeValue(k)} is not a public key: ${(e as Error).message}`);
        }
      }
      return ok([...new Set(r.value.map((k) => k.trim()))]);
    },
  }),
  'loft.metrics_listen': withDefault<ListenAddress | undefined>({
    section: 'loft',
    key: 'metrics_listen',
    type: 'string',
    seed: false,
    default: undefined,
    defaultDoc: 'unset (no metrics listener)',
    description:
      'In service mode, serve Prometheus metrics on `http://ADDRESS/metrics`. `"9464"` or `":9464"` listens on 127.0.0.1 only; another interface only when written out (`"0.0.0.0:9464"`, `"[::]:9464"`). The metrics carry no secrets, but anyone who can reach them sees the cache\u2019s activity.',
    decode: (raw) => {
      const s = str()(raw);
      if (!s.ok) return s;
      const r = parseListen(s.value);
      return typeof r === 'string' ? fail(`${describeValue(s.value)} ${r}`) : ok(r);
    },
  }),
  'loft.cache_control_narinfo': withDefault<string | undefined>({
    section: 'loft',
    key: 'cache_control_narinfo',
    type: 'string',
    seed: false,
    default: undefined,
    defaultDoc: 'unset (no Cache-Control header)',
    description:
      '`Cache-Control` header stored with the narinfos Loft writes, for caches served through a CDN (e.g. `"public, max-age=300"`: narinfos change when a path is re-signed or repaired).',
    decode: cacheControl,
  }),
  'loft.cache_control_nar': withDefault<string | undefined>({
    section: 'loft',
    key: 'cache_control_nar',
    type: 'string',
    seed: false,
    default: undefined,
    defaultDoc: 'unset (no Cache-Control header)',
    description:
      '`Cache-Control` header stored with the NARs (and listings) Loft writes (e.g. `"public, max-age=31536000, immutable"`: a NAR key names its contents).',
    decode: cacheControl,
  }),
} satisfies Record<string, Field<unknown>>;

export type SchemaKey = keyof typeof schema;
export type SchemaValues = {
  [K in SchemaKey]: (typeof schema)[K] extends Field<infer T> ? T : never;
};

export const SECTIONS: readonly Section[] = ['s3', 'loft'];

/** The schema's fields, in reference order. */
export function fields(): [SchemaKey, Field<unknown>][] {
  return Object.entries(schema) as [SchemaKey, Field<unknown>][];
}
