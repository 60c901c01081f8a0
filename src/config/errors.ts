import { LoftError, type ErrorCode } from '../util/errors.js';

/**
 * One problem (or warning) with the configuration, as data: `path` is the TOML key path
 * (`loft.upload_threads`, `s3.extra_headers.CF-Access-Client-Id`) or, for the environment,
 * the variable's name (`env.LOFT_EXTRA_HEADER_X`). `message` already shows the offending
 * value unless the value is a secret.
 */
export interface ConfigIssue {
  path: string;
  message: string;
  line?: number;
  column?: number;
}

export type ConfigWarning = ConfigIssue;

const REFERENCE_HINT =
  'every key is described in the configuration reference of README.md; unknown keys are ignored with a warning';

export function formatIssue(source: string, issue: ConfigIssue): string {
  if (issue.path.startsWith('env.')) {
    return `environment variable ${issue.path.slice(4)}: ${issue.message}`;
  }
  const where =
    issue.line === undefined
      ? source
      : `${source}:${issue.line}${issue.column === undefined ? '' : `:${issue.column}`}`;
  return issue.path === ''
    ? `${where}: ${issue.message}`
    : `${where}: ${issue.path}: ${issue.message}`;
}

/** The configuration is readable TOML but breaks the schema; `issues` lists every problem. */
export class ConfigError extends LoftError {
  readonly source: string;
  readonly issues: readonly ConfigIssue[];

  constructor(
    source: string,
    issues: readonly ConfigIssue[],
    code: ErrorCode = 'config.invalid',
    message?: string,
    hint = REFERENCE_HINT,
  ) {
    const n = issues.length;
    const head =
      message ??
      (n === 1
        ? `invalid configuration: ${formatIssue(source, issues[0]!)}`
        : `invalid configuration in ${source} (${n} problems):\n${issues
            .map((i) => `  ${formatIssue(source, i)}`)
            .join('\n')}`);
    super(code, 'config', head, { hint });
    this.source = source;
    this.issues = issues;
  }
}

/**
 * The file is not valid TOML. Only the line, column and reason are kept: the parser's own
 * message quotes the surrounding lines, which may hold a secret header value.
 */
export class ConfigSyntaxError extends ConfigError {
  readonly line: number;
  readonly column: number;
  readonly reason: string;

  constructor(source: string, line: number, column: number, reason: string, path = '') {
    super(
      source,
      [{ path, message: `invalid TOML: ${reason}`, line, column }],
      'config.syntax',
      `invalid TOML in ${source}:${line}:${column}${path === '' ? '' : ` (key ${path})`}: ${reason}`,
      'fix the syntax on that line: strings need double quotes, tables are [name], one key = value per line (https://toml.io)',
    );
    this.line = line;
    this.column = column;
    this.reason = reason;
  }
}

export class ConfigFileMissingError extends LoftError {
  readonly path: string;
  constructor(path: string, explicit: boolean) {
    super('config.missing', 'config', `configuration file not found: ${path}`, {
      hint:
        (explicit
          ? ''
          : 'Loft reads loft.toml in the current directory unless given -c/--config <FILE>. ') +
        'A minimal file:\n    [s3]\n    bucket = "nix-cache"\n    endpoint = "http://127.0.0.1:3900"\n' +
        '  with credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or ~/.aws/credentials).',
    });
    this.path = path;
  }
}

export class ConfigReadError extends LoftError {
  readonly path: string;
  constructor(path: string, cause: unknown) {
    const code = (cause as { code?: string } | undefined)?.code;
    const why =
      code === 'EACCES' || code === 'EPERM'
        ? 'permission denied'
        : code === 'EISDIR'
          ? 'it is a directory'
          : ((cause as Error | undefined)?.message ?? String(cause));
    super('config.unreadable', 'config', `cannot read configuration file ${path}: ${why}`, {
      hint: 'check the path given to -c/--config and that this user may read it',
      cause,
    });
    this.path = path;
  }
}

/** The signing key file is missing, unreadable, malformed or disagrees with signing_key_name. */
export class SigningKeyError extends LoftError {
  readonly path: string;
  constructor(path: string, message: string, hint: string, cause?: unknown) {
    super('config.signing-key', 'config', message, { hint, cause });
    this.path = path;
  }
}
