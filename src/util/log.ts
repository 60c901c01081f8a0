/**
 * The logging port. Library code logs through a Logger it is given and never prints; the
 * CLI decides how lines look (text on a terminal, JSON lines for journald or CI).
 * Fields must never carry secrets: keys, secret headers and credentials stay out of logs.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

export const nullLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

/** A logger that records lines; for tests that assert what was (or was not) logged. */
export class MemoryLogger implements Logger {
  readonly lines: { level: LogLevel; msg: string; fields?: LogFields }[] = [];
  debug(msg: string, fields?: LogFields) {
    this.lines.push({ level: 'debug', msg, fields });
  }
  info(msg: string, fields?: LogFields) {
    this.lines.push({ level: 'info', msg, fields });
  }
  warn(msg: string, fields?: LogFields) {
    this.lines.push({ level: 'warn', msg, fields });
  }
  error(msg: string, fields?: LogFields) {
    this.lines.push({ level: 'error', msg, fields });
  }
  /** Everything logged, as one string, for "this secret never appears" checks. */
  text(): string {
    return this.lines
      .map((l) => `${l.level} ${l.msg} ${JSON.stringify(l.fields ?? {})}`)
      .join('\n');
  }
}
