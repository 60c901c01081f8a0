import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  EXIT,
  EXIT_CODE_DOCS,
  exitCodeFor,
  exitCodeForKind,
  runActions,
  type ExitCode,
} from '../../../src/cli/exit-codes.js';
import { LoftError, type ErrorKind } from '../../../src/util/errors.js';
import { UsageError } from '../../../src/cli/args.js';
import { ConfigError } from '../../../src/config/errors.js';

test('the documented codes', () => {
  assert.deepEqual(EXIT, {
    ok: 0,
    failed: 1,
    usage: 2,
    config: 3,
    environment: 4,
    internal: 70,
    interrupted: 130,
  });
  assert.deepEqual(
    EXIT_CODE_DOCS.map((d) => d.code),
    [0, 1, 2, 3, 4, 70, 130],
  );
});

test('each error kind maps to its code; usage/config/environment/work are distinct', () => {
  const want: Record<ErrorKind, number> = {
    usage: 2,
    config: 3,
    environment: 4,
    format: 4,
    work: 1,
    aborted: 130,
    internal: 70,
  };
  for (const [kind, code] of Object.entries(want) as [ErrorKind, number][]) {
    assert.equal(exitCodeForKind(kind), code, kind);
    assert.equal(exitCodeFor(new LoftError('cli.usage', kind, 'm')), code, kind);
  }
  const distinct = new Set(
    ['usage', 'config', 'environment', 'work'].map((k) => exitCodeForKind(k as ErrorKind)),
  );
  assert.equal(distinct.size, 4);
  assert.ok(!distinct.has(0));
});

test('real error classes map through their kind; non-Loft errors are internal', () => {
  assert.equal(exitCodeFor(new UsageError('bad')), 2);
  assert.equal(exitCodeFor(new ConfigError('/x.toml', [{ path: 's3.bucket', message: 'm' }])), 3);
  assert.equal(exitCodeFor(new TypeError('boom')), 70);
  assert.equal(exitCodeFor('a string'), 70);
  const abort = new Error('aborted');
  abort.name = 'AbortError';
  assert.equal(exitCodeFor(abort), 130);
});

test('runActions: the first action that is not complete ends the run; no action starts after a signal', async () => {
  const ran: string[] = [];
  const codes: Record<string, ExitCode> = { upload: EXIT.failed, prune: EXIT.ok };
  const run = (a: string) => {
    ran.push(a);
    return Promise.resolve(codes[a]!);
  };
  // `--upload-path BAD --prune`: the failed upload's code, and no prune.
  assert.equal(await runActions(['upload', 'prune'], new AbortController().signal, run), 1);
  assert.deepEqual(ran, ['upload']);

  ran.length = 0;
  codes.upload = EXIT.ok;
  assert.equal(await runActions(['upload', 'prune'], new AbortController().signal, run), 0);
  assert.deepEqual(ran, ['upload', 'prune']);

  // A signal during the first action: it reports how far it got; the next never starts.
  ran.length = 0;
  const drain = new AbortController();
  const interruptedRun = (a: string) => {
    ran.push(a);
    drain.abort();
    return Promise.resolve<ExitCode>(EXIT.ok);
  };
  assert.equal(await runActions(['upload', 'prune'], drain.signal, interruptedRun), 130);
  assert.deepEqual(ran, ['upload']);
});
