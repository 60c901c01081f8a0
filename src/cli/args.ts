/**
 * Command-line parsing: argv -> a typed, validated plan of what to run. Pure: no I/O, no
 * process globals; main.ts reads stdin and the environment.
 *
 * How flags combine (also in --help):
 * - Action flags do their work and exit. Several may be given; they run in this fixed order,
 *   whatever the order on the command line, and the first failure stops the rest:
 *   --clear-cache, --reset-initial-scan, --populate-cache, --upload-path, --pin, --unpin,
 *   --prune, --pins, --verify.
 *   (Clear before populate so populate refills a fresh index; populate before upload so the
 *   upload skips what the bucket has; prune last so just-uploaded paths count as live.)
 * - With no action flag, Loft runs as a service (initial scan, watcher, scheduled prune).
 * - --force-scan modifies the service (re-run the initial scan now, ignoring the local index)
 *   or --upload-path (ask the bucket instead of trusting the index); nothing else.
 * - --dry-run applies to --upload-path and --prune only: show the plan, change nothing.
 * - --status and --post-build-hook are modes of their own and combine with no action flag.
 * - -h/--help and -V/--version print and exit, whatever else is given (unknown flags are
 *   still errors).
 */
import { parseArgs } from 'node:util';
import { LoftError } from '../util/errors.js';
import { suggest } from '../config/rules.js';
import { LOG_FORMATS, type LogFormat } from '../config/schema.js';
import { checkPinName } from '../storage/pins.js';
import { FLAGS } from './flags.js';

export class UsageError extends LoftError {
  constructor(message: string, hint = "run 'loft --help' for usage") {
    super('cli.usage', 'usage', message, { hint });
  }
}

export type OnceAction =
  | { kind: 'clear-cache' }
  | { kind: 'reset-initial-scan' }
  | { kind: 'populate-cache' }
  | {
      kind: 'upload';
      /** Paths given on the command line, in order, without duplicates ("-" removed). */
      paths: string[];
      /** "-" was given: also read whitespace-separated paths from stdin (`parsePathList`). */
      readStdin: boolean;
      dryRun: boolean;
      /** Ask the bucket for every path instead of trusting the local index. */
      forceScan: boolean;
    }
  | { kind: 'prune'; dryRun: boolean }
  /** Last: an audit sees what the other actions left. */
  | { kind: 'verify'; deep: boolean; repair: boolean }
  /** `name` undefined: the store path's name without its hash. */
  | { kind: 'pin'; path: string; name: string | undefined }
  | { kind: 'unpin'; name: string }
  | { kind: 'pins' };

export type RunMode =
  /** No action flag: the long-running service. */
  | { kind: 'service'; forceScan: boolean }
  /** One or more action flags, in execution order. */
  | { kind: 'once'; actions: OnceAction[] }
  | { kind: 'status'; format: LogFormat }
  /** `--watch-exec -- COMMAND [ARGS...]`: run COMMAND and push what it adds to the store. */
  | { kind: 'watch-exec'; command: string[] }
  | { kind: 'doctor' }
  | { kind: 'post-build-hook' };

export type ParsedArgs =
  | { kind: 'help' }
  | { kind: 'version' }
  | {
      kind: 'run';
      configPath: string;
      /** -c/--config was given (a missing default loft.toml gets a gentler message). */
      configExplicit: boolean;
      debug: boolean;
      /** undefined: use the config's log_format. */
      logFormat: LogFormat | undefined;
      mode: RunMode;
    };

export const DEFAULT_CONFIG_PATH = 'loft.toml';

type Options = NonNullable<Parameters<typeof parseArgs>[0]>['options'];

function parserOptions(): Options {
  const options: NonNullable<Options> = {};
  for (const f of FLAGS) {
    options[f.long] = {
      type: f.value === undefined ? 'boolean' : 'string',
      // Collect every occurrence so a repeated single-value flag is an error, not last-wins.
      multiple: f.value !== undefined,
      ...(f.short === undefined ? {} : { short: f.short }),
    };
  }
  return options;
}

function closestFlag(given: string): string | undefined {
  const name = given.replace(/^-+/, '').split('=')[0]!;
  const longs = FLAGS.map((f) => f.long);
  // A typo first; then a flag the name begins, when only one does (`--upload`).
  const prefixed = longs.filter((l) => name.length >= 3 && l.startsWith(name.toLowerCase()));
  const near = suggest(name, longs) ?? (prefixed.length === 1 ? prefixed[0] : undefined);
  return near === undefined ? undefined : `--${near}`;
}

/** Node's parseArgs messages, reworded for people and without its positional advice. */
function translate(e: unknown): UsageError {
  const err = e as { code?: string; message?: string };
  const msg = err.message ?? String(e);
  const quoted = /'([^']+)'/.exec(msg)?.[1];
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      const flag = quoted ?? msg;
      const near = closestFlag(flag);
      return new UsageError(`unknown option '${flag}'${near ? ` (did you mean ${near}?)` : ''}`);
    }
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      const flag = FLAGS.find((f) => msg.includes(`--${f.long}`));
      const name = flag ? `--${flag.long}` : (quoted ?? 'option');
      if (flag?.value === undefined) return new UsageError(`${name} does not take a value`);
      if (msg.includes('ambiguous')) {
        return new UsageError(
          `${name} needs a value, but the next argument looks like an option; write ${name}=<${flag.value}> if it really starts with "-"`,
        );
      }
      return new UsageError(`${name} needs a value <${flag.value}>`);
    }
    default:
      return new UsageError(msg.split('\n')[0]!);
  }
}

function one(values: Record<string, unknown>, flag: string): string | undefined {
  const v = values[flag] as string[] | undefined;
  if (v === undefined) return undefined;
  if (v.length > 1) throw new UsageError(`--${flag} was given ${v.length} times; give it once`);
  return v[0];
}

/** Parse argv (without node and script). Throws UsageError for anything wrong. */
export function parseCliArgs(argv: readonly string[]): ParsedArgs {
  // Everything after the first `--` is --watch-exec's command, never Loft's flags.
  const dashes = argv.indexOf('--');
  const command = dashes < 0 ? undefined : argv.slice(dashes + 1);
  const own = dashes < 0 ? argv : argv.slice(0, dashes);
  let values: Record<string, unknown>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...own],
      options: parserOptions(),
      strict: true,
      allowPositionals: true,
    }));
  } catch (e) {
    throw translate(e);
  }
  const flag = (name: string) => values[name] === true;

  if (flag('help')) return { kind: 'help' };
  if (flag('version')) return { kind: 'version' };

  if (positionals.length > 0) {
    const first = positionals[0]!;
    throw new UsageError(
      `unexpected argument '${first}'; loft takes options only`,
      `to upload it, use --upload-path ${first}; run 'loft --help' for usage`,
    );
  }

  const watchExec = flag('watch-exec');
  if (command !== undefined && !watchExec) {
    throw new UsageError(
      `unexpected arguments after --: ${command.join(' ')}`,
      'to run a command and upload what it builds, use loft --watch-exec -- COMMAND [ARGS...]',
    );
  }
  if (watchExec && (command === undefined || command.length === 0)) {
    throw new UsageError(
      '--watch-exec needs a command after --',
      'e.g. loft -c loft.toml --watch-exec -- nix build .#default',
    );
  }

  const configArg = one(values, 'config');
  if (configArg !== undefined && configArg.trim() === '') {
    throw new UsageError('--config needs a file path, got an empty string');
  }
  const logFormatArg = one(values, 'log-format');
  const isLogFormat = (v: string): v is LogFormat => (LOG_FORMATS as readonly string[]).includes(v);
  if (logFormatArg !== undefined && !isLogFormat(logFormatArg)) {
    throw new UsageError(
      `--log-format must be ${LOG_FORMATS.map((f) => JSON.stringify(f)).join(' or ')}, got ${JSON.stringify(logFormatArg)}`,
    );
  }
  const logFormat = logFormatArg;

  const uploadArgs = (values['upload-path'] as string[] | undefined) ?? [];
  for (const p of uploadArgs) {
    if (p.trim() === '') throw new UsageError('--upload-path needs a path, got an empty string');
  }
  const stdinCount = uploadArgs.filter((p) => p === '-').length;
  if (stdinCount > 1) throw new UsageError('--upload-path - (read stdin) was given more than once');

  const dryRun = flag('dry-run');
  const forceScan = flag('force-scan');
  const status = flag('status');
  const hook = flag('post-build-hook');

  const actions: OnceAction[] = [];
  if (flag('clear-cache')) actions.push({ kind: 'clear-cache' });
  if (flag('reset-initial-scan')) actions.push({ kind: 'reset-initial-scan' });
  if (flag('populate-cache')) actions.push({ kind: 'populate-cache' });
  if (uploadArgs.length > 0) {
    actions.push({
      kind: 'upload',
      paths: [...new Set(uploadArgs.filter((p) => p !== '-'))],
      readStdin: stdinCount === 1,
      dryRun,
      forceScan,
    });
  }
  actions.push(...pinActions(values));
  if (flag('prune')) actions.push({ kind: 'prune', dryRun });
  if (flag('pins')) actions.push({ kind: 'pins' });
  const verifyMode = verifyFlags(flag('verify'), flag('deep'), flag('repair'), dryRun);
  if (verifyMode) actions.push(verifyMode);
  const actionNames = () =>
    actions.map((a) => (a.kind === 'upload' ? '--upload-path' : `--${a.kind}`)).join(', ');

  let mode: RunMode;
  if (watchExec) {
    const others = [
      ...actions.map((a) => (a.kind === 'upload' ? '--upload-path' : `--${a.kind}`)),
      ...(status ? ['--status'] : []),
      ...(hook ? ['--post-build-hook'] : []),
      ...(dryRun ? ['--dry-run'] : []),
      ...(forceScan ? ['--force-scan'] : []),
    ];
    if (others.length > 0) {
      throw new UsageError(`--watch-exec cannot be combined with ${others.join(', ')}`);
    }
    mode = { kind: 'watch-exec', command: command! };
  } else if (flag('doctor')) {
    if (actions.length > 0 || status || hook || dryRun || forceScan) {
      throw new UsageError('--doctor stands alone: give it with no other action flag');
    }
    mode = { kind: 'doctor' };
  } else if (status || hook) {
    const name = status ? '--status' : '--post-build-hook';
    if (status && hook) throw new UsageError('--status and --post-build-hook cannot be combined');
    if (actions.length > 0)
      throw new UsageError(`${name} cannot be combined with ${actionNames()}`);
    if (dryRun) throw new UsageError(`--dry-run does not apply to ${name}`);
    if (forceScan) throw new UsageError(`--force-scan does not apply to ${name}`);
    mode = status ? { kind: 'status', format: logFormat ?? 'text' } : { kind: 'post-build-hook' };
  } else if (actions.length === 0) {
    if (dryRun) {
      throw new UsageError(
        '--dry-run applies to --upload-path and --prune only',
        "add --upload-path <PATH> or --prune; run 'loft --help' for usage",
      );
    }
    mode = { kind: 'service', forceScan };
  } else {
    const upload = actions.some((a) => a.kind === 'upload');
    const prune = actions.some((a) => a.kind === 'prune');
    if (forceScan && !upload) {
      throw new UsageError(
        `--force-scan applies to service mode and --upload-path, not to ${actionNames()}`,
      );
    }
    if (dryRun && !upload && !prune) {
      throw new UsageError(
        `--dry-run applies to --upload-path and --prune only, not to ${actionNames()}`,
      );
    }
    const mutating = actions.filter(
      (a) =>
        a.kind === 'clear-cache' ||
        a.kind === 'reset-initial-scan' ||
        a.kind === 'populate-cache' ||
        a.kind === 'pin' ||
        a.kind === 'unpin',
    );
    if (dryRun && mutating.length > 0) {
      // A "dry run" that still clears or refills the index would be a lie.
      throw new UsageError(
        `--dry-run cannot be combined with --${mutating[0]!.kind}, which would change the ${mutating[0]!.kind.includes('pin') ? 'bucket' : 'local cache'}`,
      );
    }
    mode = { kind: 'once', actions };
  }

  return {
    kind: 'run',
    configPath: configArg ?? DEFAULT_CONFIG_PATH,
    configExplicit: configArg !== undefined,
    debug: flag('debug'),
    logFormat,
    mode,
  };
}

/** --verify and its modifiers (a --dry-run --repair would be a plain --verify: refused). */
function verifyFlags(
  verify: boolean,
  deep: boolean,
  repair: boolean,
  dryRun: boolean,
): OnceAction | undefined {
  if (!verify) {
    if (deep || repair)
      throw new UsageError(`--${deep ? 'deep' : 'repair'} applies to --verify only`);
    return undefined;
  }
  if (repair && dryRun) {
    throw new UsageError(
      '--dry-run does not apply to --verify --repair',
      "drop --repair to only audit; run 'loft --help' for usage",
    );
  }
  return { kind: 'verify', deep, repair };
}

/** --pin PATH [--pin-name NAME] and --unpin NAME, checked. */
function pinActions(values: Record<string, unknown>): OnceAction[] {
  const out: OnceAction[] = [];
  const path = one(values, 'pin');
  const name = one(values, 'pin-name');
  const unpin = one(values, 'unpin');
  if (path !== undefined && path.trim() === '') {
    throw new UsageError('--pin needs a path, got an empty string');
  }
  if (name !== undefined && path === undefined) {
    throw new UsageError(
      '--pin-name applies to --pin only',
      "add --pin <PATH>; run 'loft --help' for usage",
    );
  }
  if (path !== undefined) {
    out.push({ kind: 'pin', path, name: name === undefined ? undefined : checkPinName(name) });
  }
  if (unpin !== undefined) out.push({ kind: 'unpin', name: checkPinName(unpin) });
  return out;
}

/** Paths read from stdin for `--upload-path -`: whitespace-separated, '#' comments skipped. */
export function parsePathList(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const body = line.trimStart().startsWith('#') ? '' : line;
    for (const word of body.split(/\s+/)) if (word !== '') out.push(word);
  }
  return [...new Set(out)];
}

/**
 * The paths Nix hands a post-build hook: `$OUT_PATHS`, space-separated. Nix runs the hook
 * with no arguments, so `--post-build-hook` reads only the environment.
 */
export function hookPathsFromEnv(env: Readonly<Record<string, string | undefined>>): string[] {
  const out = env.OUT_PATHS;
  if (out === undefined) {
    throw new UsageError(
      '--post-build-hook expects $OUT_PATHS, which Nix sets when it runs its post-build-hook',
      'set post-build-hook in nix.conf to a script that runs: loft --config <FILE> --post-build-hook',
    );
  }
  return [...new Set(out.split(/\s+/).filter((p) => p !== ''))];
}
