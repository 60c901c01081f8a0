/**
 * `--upload-path PATH...` (and `--upload-path -` for paths on stdin): push their closures,
 * showing progress on a terminal and log lines elsewhere, and always a final summary.
 */
import { LoftError, describeError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { mapLimit } from '../../util/limit.js';
import { pushContextOf, pushOptionsOf, type AppContext } from '../../service/context.js';
import { afterPushOf } from '../../service/after-push.js';
import { push, uploadedBytes, type PushResult } from '../../upload/push.js';
import { PushProgress, type PushEvent } from '../../upload/events.js';
import type { PlanSummary } from '../../upload/plan.js';
import { parsePathList } from '../args.js';
import { EXIT, type ExitCode } from '../exit-codes.js';
import { formatBytes, formatDuration } from '../../util/format.js';
import { ProgressDisplay, type TerminalStream } from '../progress.js';

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
  const progress = new PushProgress();
  const display =
    io.terminal && !action.dryRun ? new ProgressDisplay(progress, io.terminal) : undefined;
  const say = (
    level: 'info' | 'warn' | 'error' | 'debug',
    msg: string,
    fields?: Record<string, string | number>,
  ) => {
    if (display && level !== 'debug')
      display.above(`${level === 'info' ? '' : `${level}: `}${msg}`);
    else logger[level](msg, fields);
  };
  const onEvent = pushEventLogger(say, logger, action.dryRun, display !== undefined);

  display?.start();
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
  } finally {
    display?.stop();
  }
  if (!result.dryRun) await afterPushOf(ctx)?.(result);
  io.out.write(summaryText(result));
  const bytes = uploadedBytes(result);
  logger.debug('push summary', {
    uploaded: result.uploaded.length,
    failed: result.failed.length,
    narBytes: bytes.nar,
    fileBytes: bytes.file,
    ms: Math.round(result.ms),
  });
  // A dry run succeeded once it has a plan; otherwise 0 only when every closure is cached.
  return result.dryRun || result.complete ? EXIT.ok : EXIT.failed;
}

export function summaryText(r: PushResult): string {
  const s = r.summary;
  if (r.dryRun) {
    return (
      `dry run: would upload ${s.toUpload.paths} paths (${formatBytes(s.toUpload.narBytes)} NAR), ` +
      `${s.alreadyCached.paths} already cached, ${s.upstream.paths} left to upstream${excludedText(s)}; nothing was written\n`
    );
  }
  const { nar, file } = uploadedBytes(r);
  const ratio = nar > 0 ? ` (${((100 * file) / nar).toFixed(0)}%)` : '';
  let text =
    `uploaded ${r.uploaded.length} paths: ${formatBytes(nar)} NAR -> ${formatBytes(file)} compressed${ratio}; ` +
    `${s.alreadyCached.paths} already cached, ${s.upstream.paths} left to upstream${excludedText(s)}, ` +
    `${r.failed.length} failed, in ${formatDuration(r.ms)}\n`;
  if (r.notStarted.length > 0) {
    text += `stopped before ${r.notStarted.length} paths were started; run again to finish\n`;
  }
  for (const f of r.failed) text += `failed: ${f.path}: ${f.reason}\n`;
  return text;
}

/** Shown only when the include/exclude patterns kept something out, so other summaries stay as they were. */
function excludedText(s: PlanSummary): string {
  return s.excluded.paths > 0 ? `, ${s.excluded.paths} excluded by patterns` : '';
}

export type Say = (
  level: 'info' | 'warn' | 'error' | 'debug',
  msg: string,
  fields?: Record<string, string | number>,
) => void;

/**
 * Push events as log lines (`say` may draw them above a progress display, which then shows
 * each published path itself). Shared by `--upload-path` and `--watch-exec`.
 */
export function pushEventLogger(
  say: Say,
  logger: Logger,
  dryRun: boolean,
  display = false,
): (e: PushEvent) => void {
  return (e: PushEvent) => {
    switch (e.type) {
      case 'plan': {
        const s = e.summary;
        say(
          'info',
          `${dryRun ? 'would upload' : 'uploading'} ${s.toUpload.paths} paths (${formatBytes(s.toUpload.narBytes)} NAR); ` +
            `${s.alreadyCached.paths} already cached, ${s.upstream.paths} left to upstream${excludedText(s)}`,
          {
            toUpload: s.toUpload.paths,
            toUploadBytes: s.toUpload.narBytes,
            cached: s.alreadyCached.paths,
            upstream: s.upstream.paths,
            excluded: s.excluded.paths,
          },
        );
        break;
      }
      case 'replanned':
        say(
          'warn',
          `${e.gone} cached paths vanished before they could be refreshed (a prune elsewhere?); asked the bucket again`,
        );
        break;
      case 'refreshed':
        say('info', `refreshed ${e.paths} cached narinfos older than half the prune retention`);
        break;
      case 'cache-info-written':
        say('info', `wrote nix-cache-info to ${e.description}`);
        break;
      case 'path-retrying':
        say(
          'warn',
          `retrying ${e.path} in ${formatDuration(e.delayMs)}: ${describeError(e.error)}`,
        );
        break;
      case 'path-failed':
        say(
          'error',
          `failed ${e.path}: ${e.reason}${e.error instanceof LoftError && e.error.hint ? `\n  hint: ${e.error.hint}` : ''}`,
        );
        break;
      case 'path-published':
        if (!display) logger.info(`uploaded ${e.path}`);
        break;
      case 'path-stored':
        logger.debug(`stored NAR of ${e.path}`, {
          narSize: e.narSize,
          fileSize: e.fileSize,
          ms: Math.round(e.ms),
        });
        break;
      default:
        break;
    }
  };
}
