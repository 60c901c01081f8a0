/**
 * loft.toml -> LoftConfig: parse (TOML) -> decode each schema key (type, default,
 * constraint) -> cross-key rules -> merge extra headers with the environment. Every problem
 * is collected as data with its key path (and line when found) before anything is thrown,
 * so one run shows them all. Unknown keys are warnings: the NixOS module's extraConfig may
 * pass keys this version does not know.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import {
  ConfigError,
  ConfigFileMissingError,
  ConfigReadError,
  ConfigSyntaxError,
  type ConfigIssue,
  type ConfigWarning,
} from './errors.js';
import { mergeExtraHeaders, type Env } from './extra-headers.js';
import { keyPathAtLine, lineOfKey } from './locate.js';
import { suggest } from './rules.js';
import {
  COMPRESSION_LEVELS,
  SECTIONS,
  fields,
  type DecodeContext,
  type SchemaKey,
  type SchemaValues,
} from './schema.js';
import type { ConfigOverrides, LoftConfig } from './types.js';

export interface ParseOptions {
  /** Where the text came from (a path), used in every message and for relative paths. */
  source: string;
  /** Environment for `LOFT_EXTRA_HEADER_*` and default paths; pass `process.env` at the edge. */
  env?: Env;
  overrides?: ConfigOverrides;
}

export interface ConfigResult {
  config: LoftConfig;
  warnings: ConfigWarning[];
}

export type ConfigCheck =
  | ({ ok: true } & ConfigResult)
  | { ok: false; issues: ConfigIssue[]; warnings: ConfigWarning[]; syntax?: ConfigSyntaxError };

type Table = Record<string, unknown>;
const isTable = (v: unknown): v is Table =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

function syntaxError(text: string, source: string, e: TomlError): ConfigSyntaxError {
  // smol-toml's message is "Invalid TOML document: <reason>\n\n<quoted lines>"; keep only
  // the reason, since the quoted lines may hold a secret.
  const first = e.message.split('\n')[0] ?? '';
  const reason = first.replace(/^Invalid TOML document:\s*/, '') || 'syntax error';
  return new ConfigSyntaxError(source, e.line, e.column, reason, keyPathAtLine(text, e.line) ?? '');
}

/**
 * Validate `text` as loft.toml. Never throws for bad content: problems come back as data
 * (a TOML syntax error as a single issue, with `syntax` holding the error to throw).
 */
export function checkConfig(text: string, opts: ParseOptions): ConfigCheck {
  const { source } = opts;
  const env = opts.env ?? {};
  const issues: ConfigIssue[] = [];
  const warnings: ConfigWarning[] = [];
  const at = (table: string, key: string) => {
    const line = lineOfKey(text, table, key);
    return line === undefined ? {} : { line };
  };

  let doc: Table;
  try {
    doc = parseToml(text) as Table;
  } catch (e) {
    if (e instanceof TomlError) {
      const err = syntaxError(text, source, e);
      return { ok: false, issues: [...err.issues], warnings, syntax: err };
    }
    throw e;
  }

  // Shape: sections must be tables; anything else at the top level is unknown.
  const sections: Partial<Record<string, Table>> = {};
  for (const [k, v] of Object.entries(doc)) {
    if ((SECTIONS as readonly string[]).includes(k)) {
      if (isTable(v)) sections[k] = v;
      else
        issues.push({ path: k, message: `expected a table ([${k}]), got a value`, ...at('', k) });
    } else {
      const hint = suggest(k, SECTIONS);
      warnings.push({
        path: k,
        message: `unknown ${isTable(v) ? 'section' : 'key'}, ignored${hint ? ` (did you mean [${hint}]?)` : ''}`,
        ...(isTable(v) ? at(k, '') : at('', k)),
      });
    }
  }

  const ctx: DecodeContext = { configDir: dirname(resolve(source)), env };
  const values: Partial<Record<SchemaKey, unknown>> = {};
  const present = new Set<SchemaKey>();
  for (const [name, field] of fields()) {
    const raw = sections[field.section]?.[field.key];
    const decoded = raw === undefined ? field.defaultValue(ctx) : field.decode(raw, ctx);
    if (raw !== undefined) present.add(name);
    if (decoded.ok) values[name] = decoded.value;
    else issues.push({ path: name, message: decoded.problem, ...at(field.section, field.key) });
  }

  for (const section of SECTIONS) {
    const known = fields()
      .filter(([, f]) => f.section === section)
      .map(([, f]) => f.key);
    for (const key of Object.keys(sections[section] ?? {})) {
      if (known.includes(key)) continue;
      const hint = suggest(key, known);
      warnings.push({
        path: `${section}.${key}`,
        message: `unknown key, ignored${hint ? ` (did you mean ${hint}?)` : ''}`,
        ...at(section, key),
      });
    }
  }

  // Cross-key rules, only over keys that decoded.
  const v = values as Partial<SchemaValues>;
  const level = v['loft.compression_level'];
  if (level !== undefined && v['loft.compression'] !== undefined) {
    const range = COMPRESSION_LEVELS[v['loft.compression']];
    if (range === undefined) {
      warnings.push({
        path: 'loft.compression_level',
        message: `ignored: compression is "none"`,
        ...at('loft', 'compression_level'),
      });
    } else if (level < range.min || level > range.max) {
      issues.push({
        path: 'loft.compression_level',
        message: `${level} is out of range for ${v['loft.compression']}; expected ${range.min} to ${range.max}`,
        ...at('loft', 'compression_level'),
      });
    }
  }
  if (present.has('loft.prune_target_percentage') && v['loft.prune_max_size_gb'] === undefined) {
    warnings.push({
      path: 'loft.prune_target_percentage',
      message: 'has no effect without loft.prune_max_size_gb',
      ...at('loft', 'prune_target_percentage'),
    });
  }
  if (present.has('loft.signing_key_name') && v['loft.signing_key_path'] === undefined) {
    warnings.push({
      path: 'loft.signing_key_name',
      message: 'is set but loft.signing_key_path is not, so nothing will be signed',
      ...at('loft', 'signing_key_name'),
    });
  }

  // Extra headers: validated names and values (never shown), file merged with env.
  const fileHeaders = v['s3.extra_headers'];
  const merged = mergeExtraHeaders(fileHeaders ?? {}, env);
  const headerLine = (path: string) => {
    const m = /^s3\.extra_headers\.(.*)$/.exec(path);
    if (!m) return {};
    const line = lineOfKey(text, 's3.extra_headers', m[1]!.replace(/^"(.*)"$/, '$1'));
    return line === undefined ? {} : { line };
  };
  for (const i of merged.issues) issues.push({ ...i, ...headerLine(i.path) });
  for (const w of merged.warnings) warnings.push({ ...w, ...headerLine(w.path) });

  if (issues.length > 0) return { ok: false, issues, warnings };

  const val = values as SchemaValues;
  const maxGb = val['loft.prune_max_size_gb'];
  const overrides = opts.overrides ?? {};
  const config: LoftConfig = {
    source,
    s3: {
      bucket: val['s3.bucket'],
      region: val['s3.region'],
      endpoint: val['s3.endpoint'],
      extraHeaders: merged.headers,
      maxAttempts: val['s3.max_attempts'],
    },
    uploadThreads: val['loft.upload_threads'],
    scanOnStartup: val['loft.scan_on_startup'],
    populateCacheOnStartup: val['loft.populate_cache_on_startup'],
    localCachePath: val['loft.local_cache_path'],
    compression: val['loft.compression'],
    compressionLevel: val['loft.compression_level'],
    signingKeyPath: val['loft.signing_key_path'],
    signingKeyName: val['loft.signing_key_name'],
    skipSignedByKeys: val['loft.skip_signed_by_keys'],
    includePatterns: val['loft.include_patterns'],
    excludePatterns: val['loft.exclude_patterns'],
    uploadBuildLogs: val['loft.upload_build_logs'],
    trustedPublicKeys: val['loft.trusted_public_keys'],
    metricsListen: val['loft.metrics_listen'],
    cacheControl: {
      narInfo: val['loft.cache_control_narinfo'],
      nar: val['loft.cache_control_nar'],
    },
    prune: {
      enabled: val['loft.prune_enabled'],
      retentionDays: val['loft.prune_retention_days'],
      maxSizeGb: maxGb,
      maxSizeBytes: maxGb === undefined ? undefined : Math.floor(maxGb * 1e9),
      targetPercentage: val['loft.prune_target_percentage'],
      graceMinutes: val['loft.prune_grace_minutes'],
      schedule: val['loft.prune_schedule'],
    },
    writeNarListing: val['loft.write_nar_listing'],
    daemonSocket: val['loft.daemon_socket'],
    realStoreDir: val['loft.real_store_dir'],
    queue: {
      maxAttempts: val['loft.queue_max_attempts'],
      retrySeconds: val['loft.queue_retry_seconds'],
    },
    logFormat: overrides.logFormat ?? val['loft.log_format'],
    progressIntervalSeconds: val['loft.progress_interval_seconds'],
    logLevel: overrides.debug ? 'debug' : 'info',
  };
  return { ok: true, config, warnings };
}

/** Like `checkConfig`, but throws a ConfigError (or ConfigSyntaxError) listing every problem. */
export function parseConfig(text: string, opts: ParseOptions): ConfigResult {
  const r = checkConfig(text, opts);
  if (r.ok) return { config: r.config, warnings: r.warnings };
  if (r.syntax) throw r.syntax;
  throw new ConfigError(opts.source, r.issues);
}

export interface LoadOptions {
  /** The config file; relative paths resolve against `cwd`. */
  path: string;
  /** True when the user named the file (`-c`), false for the default `loft.toml`. */
  explicit?: boolean;
  env?: Env;
  cwd?: string;
  overrides?: ConfigOverrides;
}

/** Read and parse the config file. Missing or unreadable files are config errors too. */
export async function loadConfig(opts: LoadOptions): Promise<ConfigResult> {
  const file = resolve(opts.cwd ?? process.cwd(), opts.path);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') {
      throw new ConfigFileMissingError(file, opts.explicit ?? true);
    }
    throw new ConfigReadError(file, e);
  }
  return parseConfig(text, {
    source: file,
    env: opts.env ?? process.env,
    overrides: opts.overrides,
  });
}
