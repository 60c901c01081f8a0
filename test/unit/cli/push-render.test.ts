import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CliLogger } from '../../../src/cli/logger.js';
import {
  dryRunText,
  PushRecord,
  pushEventLogger,
  pushExitCode,
  summaryJson,
  summaryText,
} from '../../../src/cli/push-render.js';
import { checkFields, checkPushLine, SUMMARY_FIELDS } from '../../../src/cli/log-schema.js';
import { LoftError, describeError } from '../../../src/util/errors.js';
import type { PushResult } from '../../../src/upload/push.js';

const P = '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x';
const Q = '/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-y';

function capture(format: 'text' | 'json') {
  return { ...captureLines(format), format };
}

function captureLines(format: 'text' | 'json') {
  const lines: string[] = [];
  const logger = new CliLogger({
    format,
    level: 'debug',
    time: 'none',
    stream: { write: (s: string) => lines.push(s), isTTY: false },
  });
  return { logger, lines };
}

function result(over: Partial<PushResult> = {}): PushResult {
  return {
    dryRun: false,
    summary: {
      toUpload: { paths: 2, narBytes: 3000 },
      alreadyCached: { paths: 1, narBytes: 10 },
      upstream: { paths: 0, narBytes: 0 },
      excluded: { paths: 0, narBytes: 0 },
    } as PushResult['summary'],
    refreshed: 0,
    uploaded: [{ path: P, narSize: 1000, fileSize: 400 }],
    failed: [],
    notStarted: [],
    ms: 1234,
    complete: true,
    ...over,
  };
}

test('a failed path says its hint once, in the line that reports it, and not in the summary', () => {
  const { logger, lines, format } = capture('text');
  const record = new PushRecord();
  const on = pushEventLogger(logger, { dryRun: false, record, format });
  const err = new LoftError('COMPRESSION_FAILED', 'work', 'xz compression failed: boom', {
    hint: 'if it keeps failing, report it with the --debug log',
  });
  on({ type: 'path-failed', path: Q, reason: describeError(err), error: err });
  const text = lines.join('');
  assert.equal(text.match(/hint: if it keeps failing/g)?.length, 1, text);
  assert.ok(!/will be retried/.test(text), 'a push does not retry a failed path later');
  const summary = summaryText(
    result({ failed: [{ path: Q, reason: describeError(err), error: err }], complete: false }),
    { interrupted: false },
    record,
  );
  assert.match(summary, new RegExp(`^failed: ${Q}: xz compression failed: boom$`, 'm'));
  assert.ok(!/hint/.test(summary), summary);
});

test('JSON: uploaded lines carry the sizes and time of the stored NAR; failures their error.code', () => {
  const { logger, lines, format } = capture('json');
  const record = new PushRecord();
  const on = pushEventLogger(logger, { dryRun: false, record, format });
  on({ type: 'path-stored', path: P, narSize: 1000, fileSize: 400, ms: 12.6 });
  on({ type: 'path-published', path: P });
  on({ type: 'path-failed', path: Q, reason: 'dependency failed', error: undefined });
  on({ type: 'path-aborted', path: Q });
  const objs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  for (const o of objs) assert.deepEqual(checkPushLine(o), [], JSON.stringify(o));
  assert.deepEqual(
    { ...objs[0], time: undefined },
    {
      time: undefined,
      level: 'info',
      msg: `uploaded ${P} (1000 B NAR -> 400 B, 13 ms)`,
      event: 'uploaded',
      path: P,
      narSize: 1000,
      fileSize: 400,
      ms: 13,
    },
  );
  assert.deepEqual(objs[1]!.error, { code: 'DEPENDENCY_FAILED' });
  assert.deepEqual(record.aborted, [Q]);
  const s = JSON.parse(
    summaryJson(result({ complete: false }), { interrupted: true }, record),
  ) as Record<string, unknown>;
  assert.deepEqual(checkFields(s, SUMMARY_FIELDS), []);
  assert.deepEqual(s.aborted, [Q]);
});

test('the summary of an interrupted push says how many paths were left, and only then', () => {
  const record = new PushRecord();
  const stopped = summaryText(
    result({ notStarted: [Q], complete: false }),
    { interrupted: true },
    record,
  );
  assert.match(stopped, /^interrupted: 1 paths not started; run again to finish$/m);
  const done = summaryText(result(), { interrupted: false }, record);
  assert.ok(!/interrupted/.test(done), done);
});

test('--dry-run text: each category with its paths and sizes, then one count line', () => {
  const info = (path: string, narSize: number) => ({ path, narSize }) as never;
  const text = dryRunText(
    result({
      dryRun: true,
      plan: {
        toUpload: [info(Q, 2048)],
        alreadyCached: [{ info: info(P, 100), source: 'index' } as never],
        upstream: [],
        excluded: [],
        toRefresh: [],
      },
    }),
  );
  assert.equal(
    text,
    `to upload:\n  ${Q}  2.00 KiB\nalready cached:\n  ${P}  100 B\n` +
      'dry run: would upload 2 paths (2.93 KiB NAR), 1 already cached, 0 left to upstream; nothing was written\n',
  );
});

test('push exit codes: complete 0 even if a signal came as it finished; 130 only for undone work; failures 1', () => {
  assert.equal(pushExitCode(result(), true), 0, 'the last path finished as the signal arrived');
  assert.equal(pushExitCode(result(), false), 0);
  const stopped = result({ complete: false, notStarted: [Q] });
  assert.equal(pushExitCode(stopped, true), 130);
  const failed = result({
    complete: false,
    failed: [{ path: Q, reason: 'x', error: undefined }],
  });
  assert.equal(pushExitCode(failed, true), 1, 'a failure outranks the interruption');
  assert.equal(pushExitCode(failed, false), 1);
  assert.equal(pushExitCode(result({ dryRun: true, complete: false }), false), 0);
});

test('text: an uploaded line says sizes and time in words, with no key=value repeats', () => {
  const { logger, lines, format } = capture('text');
  const on = pushEventLogger(logger, { dryRun: false, record: new PushRecord(), format });
  on({ type: 'path-stored', path: P, narSize: 2048, fileSize: 1024, ms: 1500 });
  on({ type: 'path-published', path: P });
  assert.equal(lines[0], `INFO  uploaded ${P} (2.00 KiB NAR -> 1.00 KiB, 1.50 s)\n`);
});
