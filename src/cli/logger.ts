/**
 * The CLI's Logger (src/util/log.ts port): readable lines on a terminal, JSON lines for
 * journald and CI. Everything goes to one stream (stderr), keeping stdout for command
 * output (--help, --status).
 *
 * Redaction here is a safety net, not the primary control: library code must not log
 * secrets at all. The net masks (1) values of fields whose names look secret, (2) any
 * occurrence of known secret values registered with `addSecrets` (extra header values, the
 * AWS secret key, the signing key), and (3) passwords in URLs and `Authorization:`-style
 * pairs inside messages.
 */
import { EXTRA_HEADER_ENV_PREFIX, type LogFormat } from '../config/index.js';
import type { LogFields, Logger, LogLevel } from '../util/log.js';
import { hasControlChar } from '../util/text.js';

export const REDACTED = '[redacted]';

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Secret-looking words in a field name, compared without case or separators. */
const SECRET_WORDS = [
  'secret',
  'password',
  'passwd',
  'passphrase',
  'token',
  'authorization',
  'cookie',
  'credential',
  'privatekey',
  'secretkey',
  'signingkey',
  'accesskey',
  'apikey',
  'keymaterial',
  'sessionkey',
  'headervalue',
];
/** Metadata about a secret is not the secret: `signingKeyPath`, `tokenCount`, `secretName`. */
const METADATA_SUFFIXES = ['name', 'names', 'path', 'file', 'count', 'source', 'length'];

export function isSecretFieldName(name: string): boolean {
  const n = name.toLowerCase().replace(/[^a-z0-9]/g, '');
  if (METADATA_SUFFIXES.some((s) => n.endsWith(s))) return false;
  return SECRET_WORDS.some((w) => n.includes(w));
}

/** Shorter strings are too likely to occur by chance to be masked everywhere. */
const MIN_SECRET_LENGTH = 4;

const URL_USERINFO_RE = /\b([a-z][a-z0-9+.-]*:\/\/[^\s/:@]*:)[^\s/@]+@/gi;
const AUTH_PAIR_RE =
  /\b(authorization|proxy-authorization|x-amz-security-token|cookie)(\s*[:=]\s*)[^\s,;]+/gi;

export interface LoggerOptions {
  format?: LogFormat;
  /** Lowest level written; `--debug` makes it 'debug'. */
  level?: LogLevel;
  /** Where lines go (default process.stderr). */
  stream?: { write(chunk: string): unknown; isTTY?: boolean };
  /** Colour the level in text lines (default: the stream is a TTY and NO_COLOR is unset). */
  color?: boolean;
  /** Timestamps: 'clock' (HH:MM:SS.mmm local, terminals), 'iso' (UTC), 'none'. */
  time?: 'clock' | 'iso' | 'none';
  now?: () => Date;
  secrets?: Iterable<string | undefined>;
  env?: Readonly<Record<string, string | undefined>>;
}

const COLORS: Record<LogLevel, string> = {
  debug: '\x1b[90m',
  info: '\x1b[32m',
  warn: '\x1b[33m',
  error: '\x1b[31m',
};

function clockTime(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** key=value with quoting only when needed, so lines stay greppable. */
function textValue(v: string | number | boolean | null): string {
  if (typeof v !== 'string') return String(v);
  return v !== '' && /^[^\s"=\\]+$/.test(v) && !hasControlChar(v) ? v : JSON.stringify(v);
}

/**
 * Fields a text line need not show: the event name (for scripts, which read JSON) and
 * values the message already says (`uploaded /nix/store/x` needs no `path=`).
 */
function repeatsMessage(key: string, v: string | number | boolean | null, msg: string): boolean {
  if (key === 'event') return true;
  return typeof v === 'string' && v.length > 0 && msg.includes(v);
}

/** Longest field value a text line shows; a list of paths is cut to one line. */
const TEXT_VALUE_MAX = 160;

function oneLine(v: string | number | boolean | null): string | number | boolean | null {
  if (typeof v !== 'string' || v.length <= TEXT_VALUE_MAX) return v;
  const cut = v.slice(0, TEXT_VALUE_MAX);
  const words = v.split(' ');
  // A list already shortened upstream ends in "…(+N)": count those too.
  const more = /^…\(\+(\d+)\)$/.exec(words[words.length - 1]!);
  const total = more ? words.length - 1 + Number(more[1]) : words.length;
  const shown = cut.split(' ').length - 1;
  return words.length > 1 && shown > 0
    ? `${words.slice(0, shown).join(' ')} …(+${total - shown} more)`
    : `${cut}…`;
}

export class CliLogger implements Logger {
  readonly format: LogFormat;
  readonly level: LogLevel;
  #stream: { write(chunk: string): unknown; isTTY?: boolean };
  readonly #color: boolean;
  readonly #time: 'clock' | 'iso' | 'none';
  readonly #now: () => Date;
  #secrets: string[] = [];
  /** Lines of this turn of the event loop not yet written (stderr only; see #log). */
  #pending = '';
  readonly #batch: boolean;

  constructor(opts: LoggerOptions = {}) {
    this.format = opts.format ?? 'text';
    this.level = opts.level ?? 'info';
    this.#stream = opts.stream ?? process.stderr;
    this.#batch = opts.stream === undefined;
    const tty = this.#stream.isTTY === true;
    const env = opts.env ?? {};
    this.#color = opts.color ?? (tty && this.format === 'text' && env.NO_COLOR === undefined);
    this.#time = opts.time ?? (tty ? 'clock' : 'iso');
    this.#now = opts.now ?? (() => new Date());
    this.addSecrets(opts.secrets ?? []);
  }

  /** Register values that must never be written, wherever they turn up. */
  addSecrets(values: Iterable<string | undefined>): void {
    for (const v of values) {
      if (v !== undefined && v.length >= MIN_SECRET_LENGTH && !this.#secrets.includes(v)) {
        this.#secrets.push(v);
      }
    }
    // Longest first, so a secret containing another is masked whole.
    this.#secrets.sort((a, b) => b.length - a.length);
  }

  /**
   * Send lines somewhere else until the returned function is called: the progress display
   * takes them while it runs, so every line (ours, the daemon's, a signal's) lands above
   * the progress line, never on it.
   */
  redirect(write: (chunk: string) => void): () => void {
    const previous = this.#stream;
    this.#stream = { write, isTTY: previous.isTTY };
    return () => {
      this.#stream = previous;
    };
  }

  enabled(level: LogLevel): boolean {
    return ORDER[level] >= ORDER[this.level];
  }

  debug(msg: string, fields?: LogFields): void {
    this.#log('debug', msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.#log('info', msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.#log('warn', msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.#log('error', msg, fields);
  }

  /** Mask known secrets and credential patterns in free text. */
  mask(text: string): string {
    let out = text;
    for (const s of this.#secrets) out = out.split(s).join(REDACTED);
    return out.replace(URL_USERINFO_RE, `$1${REDACTED}@`).replace(AUTH_PAIR_RE, `$1$2${REDACTED}`);
  }

  /** The fields as they will be written: secret-named fields masked, undefined dropped. */
  redact(fields: LogFields | undefined): [string, string | number | boolean | null][] {
    const out: [string, string | number | boolean | null][] = [];
    for (const [k, v] of Object.entries(fields ?? {})) {
      if (v === undefined) continue;
      if (isSecretFieldName(k) && v !== null) out.push([k, REDACTED]);
      else out.push([k, typeof v === 'string' ? this.mask(v) : v]);
    }
    return out;
  }

  /** Render one line (without writing it); exposed for tests. */
  render(level: LogLevel, msg: string, fields?: LogFields): string {
    const now = this.#now();
    const safeMsg = this.mask(msg);
    const safe = this.redact(fields);
    if (this.format === 'json') {
      const obj: Record<string, unknown> = { time: now.toISOString(), level, msg: safeMsg };
      // Every line names its event; lines from the layers below are plain "log" lines.
      if (!safe.some(([k]) => k === 'event')) obj.event = 'log';
      for (const [k, v] of safe) {
        // `error.code` nests, so scripts read `.error.code`.
        const dot = k.indexOf('.');
        if (dot > 0) {
          const outer = k.slice(0, dot);
          const inner = (obj[outer] ??= {}) as Record<string, unknown>;
          if (typeof inner === 'object') inner[k.slice(dot + 1)] = v;
        } else obj[k in obj ? `field_${k}` : k] = v;
      }
      return `${JSON.stringify(obj)}\n`;
    }
    const time =
      this.#time === 'none'
        ? ''
        : `${this.#time === 'clock' ? clockTime(now) : now.toISOString()} `;
    const tag = level.toUpperCase().padEnd(5);
    const lvl = this.#color ? `${COLORS[level]}${tag}\x1b[0m` : tag;
    const kv = safe
      .filter(([k, v]) => !repeatsMessage(k, v, safeMsg))
      .map(([k, v]) => ` ${k}=${textValue(oneLine(v))}`)
      .join('');
    return `${time}${lvl} ${safeMsg}${kv}\n`;
  }

  #log(level: LogLevel, msg: string, fields?: LogFields): void {
    if (!this.enabled(level)) return;
    const line = this.render(level, msg, fields);
    // stderr is written synchronously, one system call per write (and, to a pipe, a wake-up
    // of its reader): info and debug lines of one turn of the event loop go out together.
    // A warning or an error goes out at once, with any lines before it; 'exit' writes what
    // is left.
    if (!this.#batch || ORDER[level] >= ORDER.warn) {
      this.#stream.write(this.#pending + line);
      this.#pending = '';
      return;
    }
    if (this.#pending === '') {
      setImmediate(this.#flush);
      process.once('exit', this.#flush);
    }
    this.#pending += line;
  }

  readonly #flush = (): void => {
    process.off('exit', this.#flush);
    if (this.#pending === '') return;
    const lines = this.#pending;
    this.#pending = '';
    this.#stream.write(lines);
  };
}

/**
 * Secret values Loft can know from its environment: the AWS secret key and session token,
 * and every `LOFT_EXTRA_HEADER_*` value. Register them with `addSecrets` at start-up.
 */
export function secretsFromEnv(env: Readonly<Record<string, string | undefined>>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) continue;
    if (
      k === 'AWS_SECRET_ACCESS_KEY' ||
      k === 'AWS_SESSION_TOKEN' ||
      k.startsWith(EXTRA_HEADER_ENV_PREFIX)
    ) {
      out.push(v);
    }
  }
  return out;
}

export function createLogger(opts: LoggerOptions = {}): CliLogger {
  return new CliLogger(opts);
}
