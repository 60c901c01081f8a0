/**
 * How a push looks: its events as log lines (text for people, JSON for scripts, with the
 * fields of src/cli/log-schema.ts), and its summary or dry-run listing on stdout. The
 * progress display and the logger share one stream (CliLogger.redirect), so this only
 * decides what to say, once, in words true for a one-shot push.
 */
import { LoftError, describeError, isLoftError } from '../util/errors.js';
import { formatBytes, formatDuration } from '../util/format.js';
import type { LogFields, Logger, LogLevel } from '../util/log.js';
import type { PushEvent } from '../upload/events.js';
import { uploadedBytes, type PushResult } from '../upload/push.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import { errorCode } from './log-schema.js';
import type { PlanSummary } from '../upload/plan.js';

/** Said only when the include/exclude patterns kept something out. */
function excludedText(s: PlanSummary): string {
  return s.excluded.paths > 0 ? `, ${s.excluded.paths} excluded by patterns` : '';
}

/** The message without its hint (the hint is said once, where the failure is logged). */
function messageOf(e: unknown, fallback: string): string {
  return e instanceof LoftError ? e.message : fallback;
}

/** What a push said about its paths, kept for the summary (also when it was aborted). */
export class PushRecord {
  readonly aborted: string[] = [];
  readonly stored = new Map<string, { narSize: number; fileSize: number; ms: number }>();
}

export function pushEventLogger(
  logger: Logger,
  opts: { dryRun: boolean; record: PushRecord; format: 'text' | 'json' },
): (e: PushEvent) => void {
  const { record } = opts;
  // Text lines say it all in words; the fields are for scripts (JSON), not said twice.
  const say = (level: LogLevel, msg: string, fields: LogFields & { event: string }) =>
    logger[level](msg, opts.format === 'json' ? fields : { event: fields.event });
  return (e) => {
    switch (e.type) {
      case 'plan': {
        const s = e.summary;
        // A dry run says this once, on stdout, with the paths.
        say(
          opts.dryRun ? 'debug' : 'info',
          `${opts.dryRun ? 'would upload' : 'uploading'} ${s.toUpload.paths} paths (${formatBytes(s.toUpload.narBytes)} NAR); ` +
            `${s.alreadyCached.paths} already cached, ${s.upstream.paths} left to upstream${excludedText(s)}`,
          {
            event: 'plan',
            toUpload: s.toUpload.paths,
            narSize: s.toUpload.narBytes,
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
          { event: 'replanned', gone: e.gone },
        );
        break;
      case 'refreshed':
        say('info', `refreshed ${e.paths} cached narinfos older than half the prune retention`, {
          event: 'refreshed',
          paths: e.paths,
        });
        break;
      case 'cache-info-written':
        say('info', `wrote nix-cache-info to ${e.description}`, { event: 'cache-info-written' });
        break;
      case 'path-started':
        say('debug', `uploading ${e.path}`, {
          event: 'path-started',
          path: e.path,
          narSize: e.narSize,
          attempt: e.attempt,
        });
        break;
      case 'path-stored':
        record.stored.set(e.path, {
          narSize: e.narSize,
          fileSize: e.fileSize,
          ms: Math.round(e.ms),
        });
        break;
      case 'path-published': {
        const s = record.stored.get(e.path);
        const sizes = s
          ? ` (${formatBytes(s.narSize)} NAR -> ${formatBytes(s.fileSize)}, ${formatDuration(s.ms)})`
          : '';
        say('info', `uploaded ${e.path}${sizes}`, {
          event: 'uploaded',
          path: e.path,
          narSize: s?.narSize ?? 0,
          fileSize: s?.fileSize ?? 0,
          ms: s?.ms ?? 0,
        });
        break;
      }
      case 'path-retrying':
        say(
          // Redone as part of finishing what is in flight: nothing for a user to act on.
          isLoftError(e.error, 'COMPRESSION_INTERRUPTED') ? 'debug' : 'warn',
          `retrying ${e.path} in ${formatDuration(e.delayMs)} (attempt ${e.attempt} failed): ${describeError(e.error)}`,
          {
            event: 'path-retrying',
            path: e.path,
            attempt: e.attempt,
            delayMs: e.delayMs,
            'error.code': errorCode(e.error),
          },
        );
        break;
      case 'path-failed': {
        // The reason already carries the hint (describeError): said once, here.
        say('error', `failed ${e.path}: ${e.reason}`, {
          event: 'path-failed',
          path: e.path,
          reason: messageOf(e.error, e.reason),
          'error.code': e.error === undefined ? 'DEPENDENCY_FAILED' : errorCode(e.error),
        });
        break;
      }
      case 'path-aborted':
        record.aborted.push(e.path);
        say('warn', `aborted ${e.path}: its upload was cut off, nothing of it was published`, {
          event: 'path-aborted',
          path: e.path,
        });
        break;
      default:
        break;
    }
  };
}

/** How the run ended, for the summary: finished, stopped by a signal, or aborted. */
export interface PushEnding {
  /** A signal stopped the push before all its work was done. */
  interrupted: boolean;
}

export function summaryText(r: PushResult, end: PushEnding, record: PushRecord): string {
  const s = r.summary;
  if (r.dryRun) return dryRunText(r);
  const { nar, file } = uploadedBytes(r);
  const ratio = nar > 0 ? ` (${((100 * file) / nar).toFixed(0)}%)` : '';
  let text =
    `uploaded ${r.uploaded.length} paths: ${formatBytes(nar)} NAR -> ${formatBytes(file)} compressed${ratio}; ` +
    `${s.alreadyCached.paths} already cached, ${s.upstream.paths} left to upstream${excludedText(s)}, ` +
    `${r.failed.length} failed, in ${formatDuration(r.ms)}\n`;
  const left = r.notStarted.length + record.aborted.length;
  if (end.interrupted && left > 0) {
    text += `interrupted: ${r.notStarted.length} paths not started${record.aborted.length ? `, ${record.aborted.length} aborted` : ''}; run again to finish\n`;
  }
  // One line per failure, without the hint (it was logged with the failure).
  for (const f of r.failed) text += `failed: ${f.path}: ${messageOf(f.error, f.reason)}\n`;
  return text;
}

export function summaryJson(r: PushResult, end: PushEnding, record: PushRecord): string {
  const { nar, file } = uploadedBytes(r);
  return `${JSON.stringify({
    event: 'summary',
    complete: r.complete,
    interrupted: end.interrupted,
    uploaded: r.uploaded,
    failed: r.failed.map((f) => ({
      path: f.path,
      reason: messageOf(f.error, f.reason),
      error: { code: f.error === undefined ? 'DEPENDENCY_FAILED' : errorCode(f.error) },
    })),
    aborted: record.aborted,
    notStarted: r.notStarted.length,
    cached: r.summary.alreadyCached.paths,
    upstream: r.summary.upstream.paths,
    excluded: r.summary.excluded.paths,
    narSize: nar,
    fileSize: file,
    ms: Math.round(r.ms),
  })}\n`;
}

interface Listed {
  path: string;
  narSize: number;
}

function dryRunLists(r: PushResult): {
  toUpload: Listed[];
  cached: Listed[];
  upstream: Listed[];
  excluded: Listed[];
} {
  const plan = r.plan;
  const item = (i: { path: string; narSize: number }) => ({ path: i.path, narSize: i.narSize });
  return {
    toUpload: plan?.toUpload.map(item) ?? [],
    cached: plan?.alreadyCached.map((c) => item(c.info)) ?? [],
    upstream: plan?.upstream.map(item) ?? [],
    excluded: plan?.excluded.map(item) ?? [],
  };
}

/** --dry-run: every path of the closure under its category, with its NAR size. */
export function dryRunText(r: PushResult): string {
  const lists = dryRunLists(r);
  const s = r.summary;
  let text = '';
  const section = (title: string, items: Listed[]) => {
    if (items.length === 0) return;
    text += `${title}:\n`;
    for (const i of items) text += `  ${i.path}  ${formatBytes(i.narSize)}\n`;
  };
  section('to upload', lists.toUpload);
  section('already cached', lists.cached);
  section('left to upstream', lists.upstream);
  section('excluded by patterns', lists.excluded);
  text +=
    `dry run: would upload ${s.toUpload.paths} paths (${formatBytes(s.toUpload.narBytes)} NAR), ` +
    `${s.alreadyCached.paths} already cached, ${s.upstream.paths} left to upstream${excludedText(s)}; nothing was written\n`;
  return text;
}

export function dryRunJson(r: PushResult): string {
  return `${JSON.stringify({
    event: 'dry-run',
    ...dryRunLists(r),
    narSize: r.summary.toUpload.narBytes,
  })}\n`;
}

/**
 * The exit code of a push, by the table in exit-codes.ts: 0 when every closure is in the
 * cache (also when a signal came as the last path finished) or a dry run planned; 1 when a
 * path failed; 130 when a signal stopped it before its work was done.
 */
export function pushExitCode(r: PushResult, drained: boolean): ExitCode {
  if (r.dryRun || r.complete) return EXIT.ok;
  return r.failed.length === 0 && drained ? EXIT.interrupted : EXIT.failed;
}
