/**
 * `--upload-path PATH...` (and `--upload-path -` for paths on stdin): push their closures,
 * showing progress on a terminal and log lines elsewhere, and always a final summary.
 */
import { LoftError } from '../../util/errors.js';
import { mapLimit } from '../../util/limit.js';
import { pushContextOf, pushOptionsOf, type AppContext } from '../../service/context.js';
import { afterPushOf } from '../../service/after-push.js';
import { push, type PushResult } from '../../upload/push.js';
import { PushProgress } from '../../upload/events.js';
import { parsePathList } from '../args.js';
import { EXIT, type ExitCode } from '../exit-codes.js';
import { ProgressDisplay, ProgressTicker, type TerminalStream } from '../progress.js';
import {
  dryRunJson,
  dryRunText,
  PushRecord,
  pushEventLogger,
  pushExitCode,
  summaryJson,
  summaryText,
} from '../push-render.js';

export interface UploadAction {
  paths: string[];
  readStdin: boolean;
  dryRun: boolean;
  forceScan: boolean;
}

export interface UploadIo {
  readStdin(): Promise<string>;
  /** The summary goes here (stdout). */
  out: { write(s: string): unknown };
  /** A terminal to draw progress on, when there is one and logs are text. */
  terminal: TerminalStream | undefined;
  /** Send every log line elsewhere (above the progress line) until the returned call. */
  redirectLog?(write: (chunk: string) => void): () => void;
  /** First SIGINT/SIGTERM: stop starting paths. Second: abort. */
  drain?: AbortSignal;
  signal?: AbortSignal;
}

class BadPathsError extends LoftError {
  /** One line per bad path; each distinct hint once, at the end. */
  constructor(problems: LoftError[]) {
    const hints = [...new Set(problems.flatMap((e) => (e.hint ? [e.hint] : [])))];
    super(
      'UPLOAD_BAD_PATHS',
      'usage',
      `cannot upload:\n  ${problems.map((e) => e.message.replace(/\n\s*/g, ' ')).join('\n  ')}`,
      {
        hint:
          hints.length > 0
            ? hints.join('\n  hint: ')
            : 'give store paths (or symlinks to them, like ./result) that are valid in the local store',
      },
    );
  }
}

/** What a user-given path can be wrong with; anything else (daemon gone...) is not theirs. */
const BAD_PATH_CODES = new Set([
  'PATH_MISSING',
  'PATH_OUTSIDE_STORE',
  'STORE_PATH_INVALID',
  'PATH_NOT_VALID',
]);

/**
 * Every bad path is reported at once, so one run tells the user everything to fix. Paths
 * resolve in parallel: `nix-store -qR ... | loft --upload-path -` gives thousands, each a
 * daemon round trip.
 */
async function resolveAll(ctx: AppContext, userPaths: string[]): Promise<string[]> {
  const outcomes = await mapLimit(userPaths, RESOLVE_CONCURRENCY, (p) =>
    ctx.store.resolvePath(p).then(
      (path) => ({ path }),
      (e: unknown) => {
        if (!(e instanceof LoftError) || !BAD_PATH_CODES.has(e.code)) throw e;
        return { problem: e };
      },
    ),
  );
  const problems = outcomes.flatMap((o) => ('problem' in o ? [o.problem] : []));
  if (problems.length > 0) throw new BadPathsError(problems);
  return [...new Set(outcomes.flatMap((o) => ('path' in o ? [o.path] : [])))];
}

const RESOLVE_CONCURRENCY = 16;

export async function runUpload(
  ctx: AppContext,
  action: UploadAction,
  io: UploadIo,
): Promise<ExitCode> {
  const given = [...action.paths];
  if (action.readStdin) given.push(...parsePathList(await io.readStdin()));
  if (given.length === 0) {
    throw new LoftError('UPLOAD_NO_PATHS', 'usage', 'no paths to upload', {
      hint: 'give --upload-path PATH, or --upload-path - with paths on stdin',
    });
  }
  const roots = await resolveAll(ctx, given);
  const { logger, config } = ctx;
  const json = config.logFormat === 'json';
  if (!action.dryRun && ctx.signingKey === undefined) warnUnsigned(logger);
  const progress = new PushProgress();
  const display =
    io.terminal && !action.dryRun ? new ProgressDisplay(progress, io.terminal) : undefined;
  const ticker =
    !io.terminal && !action.dryRun
      ? new ProgressTicker(
          progress,
          (msg, fields) => logger.info(msg, { event: 'progress', ...(json ? fields : {}) }),
          config.progressIntervalSeconds * 1000,
        )
      : undefined;
  const record = new PushRecord();
  const onEvent = pushEventLogger(logger, {
    dryRun: action.dryRun,
    record,
    format: config.logFormat,
  });

  // Every log line goes above the progress line while it is drawn.
  const restore = display ? io.redirectLog?.(display.write) : undefined;
  display?.start();
  ticker?.start();
  let result: PushResult;
  try {
    result = await push(pushContextOf(ctx), roots, {
      ...pushOptionsOf(config),
      ignoreIndex: action.forceScan,
      dryRun: action.dryRun,
      drain: io.drain,
      signal: io.signal,
      onEvent,
      progress,
    });
  } catch (e) {
    if (!(e instanceof LoftError && e.code === 'INTERRUPTED')) throw e;
    // Aborted by a second signal: each cut-off path was logged; say what is in the cache.
    io.out.write(
      json
        ? `${JSON.stringify({ event: 'aborted', published: progress.pathsPublished, aborted: record.aborted })}\n`
        : `aborted: ${progress.pathsPublished} paths were published before the abort, ${record.aborted.length} cut off; run again to finish\n`,
    );
    return EXIT.interrupted;
  } finally {
    ticker?.stop();
    display?.stop();
    restore?.();
  }
  // Interrupted only if the signal left work undone: a push that finished as it arrived is complete.
  if (!result.dryRun) await afterPushOf(ctx)(result, roots);
  const end = { interrupted: (io.drain?.aborted ?? false) && !result.complete };
  if (result.dryRun) io.out.write(json ? dryRunJson(result) : dryRunText(result));
  else io.out.write(json ? summaryJson(result, end, record) : summaryText(result, end, record));
  return pushExitCode(result, io.drain?.aborted ?? false);
}

/** Once per push: unsigned narinfos are refused by every Nix with require-sigs (the default). */
function warnUnsigned(logger: AppContext['logger']): void {
  logger.warn(
    'no signing key (loft.signing_key_path): the uploads are not signed, and Nix refuses ' +
      'unsigned paths unless its users set require-sigs = false',
    { event: 'unsigned' },
  );
  logger.warn(
    'make a key with: nix-store --generate-binary-cache-key NAME secret.key public.key; set ' +
      'signing_key_path to secret.key and add public.key to trusted-public-keys on the clients',
    { event: 'unsigned' },
  );
}
