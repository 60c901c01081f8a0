/**
 * The stable schema of `--log-format json` for pushes: every stderr line is an object with
 * `time`, `level`, `msg`, `event` and the fields listed for its event; the summary is one
 * object on stdout. Scripts may rely on these names and types; new optional fields may be
 * added, none removed or renamed. The README's "JSON output" section documents this table,
 * and a test checks real output against it.
 */
import { LoftError } from '../util/errors.js';

/** The stable code of an error, for `error.code`. */
export function errorCode(e: unknown): string {
  if (e instanceof LoftError) return e.code;
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'UNEXPECTED';
}

export type FieldType = 'string' | 'number' | 'boolean' | 'object' | 'array';

/** Fields every line has. */
export const LINE_FIELDS: Readonly<Record<string, FieldType>> = {
  time: 'string',
  level: 'string',
  msg: 'string',
  event: 'string',
};

/** Per event: the fields its lines always carry. */
export const PUSH_EVENTS: Readonly<Record<string, Readonly<Record<string, FieldType>>>> = {
  /** The plan: how many paths to upload (and their NAR bytes), cached, left to upstream. */
  plan: { toUpload: 'number', narSize: 'number', cached: 'number', upstream: 'number' },
  /** No signing key: the uploads are unsigned. */
  unsigned: {},
  'cache-info-written': {},
  refreshed: { paths: 'number' },
  replanned: { gone: 'number' },
  /** (--debug) a NAR upload began. */
  'path-started': { path: 'string', narSize: 'number', attempt: 'number' },
  /** A path's narinfo is published: it is in the cache. `ms`: its NAR upload's time. */
  uploaded: { path: 'string', narSize: 'number', fileSize: 'number', ms: 'number' },
  'path-retrying': { path: 'string', attempt: 'number', delayMs: 'number', error: 'object' },
  /** `error.code`: the stable error code; DEPENDENCY_FAILED when a dependency failed. */
  'path-failed': { path: 'string', reason: 'string', error: 'object' },
  /** A second signal cut this path's upload off; nothing of it was published. */
  'path-aborted': { path: 'string' },
  /** Every `progress_interval_seconds` when stderr is not a terminal. */
  progress: {
    pathsDone: 'number',
    pathsTotal: 'number',
    pathsFailed: 'number',
    narBytesRead: 'number',
    narBytesTotal: 'number',
    fileBytesWritten: 'number',
    ms: 'number',
  },
  /** SIGINT/SIGTERM arrived: `stage` is "drain" (first) or "abort" (second). */
  interrupt: { signal: 'string', stage: 'string' },
  /** The run ended with an error; `error.code` names it. */
  error: { error: 'object' },
  /** Any other line (from the store, storage or config layers). */
  log: {},
};

/** The summary object on stdout (`event` is "summary", or "dry-run" for --dry-run). */
export const SUMMARY_FIELDS: Readonly<Record<string, FieldType>> = {
  event: 'string',
  complete: 'boolean',
  interrupted: 'boolean',
  uploaded: 'array',
  failed: 'array',
  aborted: 'array',
  notStarted: 'number',
  cached: 'number',
  upstream: 'number',
  narSize: 'number',
  fileSize: 'number',
  ms: 'number',
};

export const DRY_RUN_FIELDS: Readonly<Record<string, FieldType>> = {
  event: 'string',
  toUpload: 'array',
  cached: 'array',
  upstream: 'array',
  narSize: 'number',
};

export function typeOf(v: unknown): FieldType | 'null' | 'undefined' {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  const t = typeof v;
  return t === 'string' || t === 'number' || t === 'boolean' || t === 'object' ? t : 'undefined';
}

/** Problems of one object against a field table (empty: it conforms). */
export function checkFields(
  obj: Record<string, unknown>,
  fields: Readonly<Record<string, FieldType>>,
): string[] {
  const out: string[] = [];
  for (const [k, t] of Object.entries(fields)) {
    if (typeOf(obj[k]) !== t) out.push(`${k}: expected ${t}, got ${typeOf(obj[k])}`);
  }
  return out;
}

/** Problems of one stderr JSON line of a push. */
export function checkPushLine(obj: Record<string, unknown>): string[] {
  const base = checkFields(obj, LINE_FIELDS);
  if (base.length > 0) return base;
  const fields = PUSH_EVENTS[obj.event as string];
  return fields === undefined ? [`unknown event "${String(obj.event)}"`] : checkFields(obj, fields);
}
