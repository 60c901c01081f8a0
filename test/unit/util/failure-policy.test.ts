import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../support/fixtures.js';
import { ERROR_CODES, isErrorCode, type ErrorCode } from '../../../src/util/error-codes.js';
import {
  ERRORS_REGENERATE,
  extractErrorReference,
  renderErrorReference,
} from '../../../src/util/error-reference.js';
import { LoftError } from '../../../src/util/errors.js';
import {
  EXIT,
  OUTAGE_BACKOFF,
  backoffMs,
  codeAfterRequestRetries,
  exitCodeFor,
  meaningOf,
  pushActionFor,
  queueActionFor,
  queuePathBackoff,
  retriesRequest,
} from '../../../src/util/failure-policy.js';
import { S3RequestError, S3ServerError } from '../../../src/storage/errors.js';
import { DaemonConnectionError, DaemonProtocolError } from '../../../src/daemon/errors.js';
import { PruneIncompleteError } from '../../../src/prune/errors.js';

test('equal jitter doubles per retry within [nominal/2, nominal], capped', () => {
  const b = { baseMs: 1000, maxMs: 60_000, jitter: 'equal' as const };
  assert.equal(backoffMs(1, b, 0), 500);
  assert.equal(backoffMs(1, b, 1), 1000);
  assert.equal(backoffMs(3, b, 1), 4000);
  assert.equal(backoffMs(3, b, 0), 2000);
  assert.equal(backoffMs(30, b, 1), 60_000);
  assert.equal(backoffMs(30, b, 0), 30_000);
  for (let n = 1; n < 12; n++) {
    const d = backoffMs(n, queuePathBackoff(1000), Math.random());
    const nominal = Math.min(3_600_000, 1000 * 2 ** (n - 1));
    assert.ok(d >= nominal / 2 && d <= nominal, `${n}: ${d}`);
  }
});

test('full jitter stays in [0, nominal]; no jitter is the nominal wait', () => {
  const full = { baseMs: 100, maxMs: 5000, jitter: 'full' as const };
  assert.equal(backoffMs(3, full, 0), 0);
  assert.equal(backoffMs(3, full, 0.5), 200);
  assert.equal(backoffMs(20, full, 0.999999999), 4999);
  // The service's outage pause: 5 s doubling to 5 min, whatever the random draw.
  const pauses = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffMs(n, OUTAGE_BACKOFF, 0.3));
  assert.deepEqual(pauses, [5000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000]);
});

const s3Target = { bucket: 'b', endpoint: 'http://127.0.0.1:1', region: 'us-east-1' };
function s3Failure(status: number | undefined, code?: string) {
  return {
    operation: 'PutObject',
    key: 'k',
    status,
    code,
    message: undefined,
    requestId: undefined,
    attempts: 5,
  };
}

test('S3_SERVER_ERROR (a server still failing) is retried by push and pauses the queue', () => {
  const e = new S3ServerError(s3Target, s3Failure(503, 'SlowDown'));
  assert.equal(meaningOf(e), 'retry-request');
  assert.equal(pushActionFor(e), 'retry-path');
  assert.equal(queueActionFor(e), 'pause');
  assert.equal(exitCodeFor(e), EXIT.failed);
});

test('S3_REQUEST_FAILED (an answer about the request) fails the path, whatever its status', () => {
  for (const [status, code] of [
    [404, 'NotFound'],
    [400, 'InvalidArgument'],
    [501, 'NotImplemented'],
    [undefined, undefined],
  ] as const) {
    const e = new S3RequestError(s3Target, s3Failure(status, code));
    assert.equal(meaningOf(e), 'path', e.message);
    assert.equal(pushActionFor(e), 'fail-path', e.message);
    assert.equal(queueActionFor(e), 'charge', e.message);
    assert.equal(exitCodeFor(e), EXIT.failed, e.message);
  }
});

test('only retry-request codes are retried as one request; two leave as what the run must hear', () => {
  const retried = Object.keys(ERROR_CODES).filter((c) => retriesRequest(c as ErrorCode));
  assert.deepEqual(retried.sort(), ['S3_CLOCK_SKEW', 'S3_NO_ANSWER', 'S3_SERVER_ERROR']);
  assert.equal(codeAfterRequestRetries('S3_NO_ANSWER'), 'S3_UNREACHABLE');
  assert.equal(codeAfterRequestRetries('S3_CLOCK_SKEW'), 'S3_ACCESS_DENIED');
  assert.equal(codeAfterRequestRetries('S3_SERVER_ERROR'), 'S3_SERVER_ERROR');
  assert.equal(codeAfterRequestRetries('S3_REQUEST_FAILED'), 'S3_REQUEST_FAILED');
  assert.equal(ERROR_CODES.S3_UNREACHABLE.meaning, 'outage');
  assert.equal(ERROR_CODES.S3_ACCESS_DENIED.meaning, 'outage');
});

test('a lost daemon connection retries the path in a push and pauses the service', () => {
  const e = new DaemonConnectionError('socket /nix/var/nix/daemon-socket/socket', 'reset');
  assert.equal(e.code, 'DAEMON_CONNECTION_LOST');
  assert.equal(pushActionFor(e), 'retry-path');
  assert.equal(queueActionFor(e), 'pause');
});

test('environment, config and internal errors stop a push and pause the service', () => {
  for (const code of [
    'S3_UNREACHABLE',
    'S3_ACCESS_DENIED',
    'CACHE_CHANGING',
    'config.invalid',
    'UPLOAD_SIZE_MISMATCH',
  ] as const) {
    const e = new LoftError(code, ERROR_CODES[code].kind as 'environment', 'm');
    assert.equal(pushActionFor(e), 'stop-push', code);
    assert.equal(queueActionFor(e), 'pause', code);
  }
});

test('malformed data of one path fails that path everywhere; a daemon protocol error retries it', () => {
  for (const code of ['NAR_INVALID', 'NAR_TRUNCATED', 'NARINFO_INVALID'] as const) {
    const e = new LoftError(code, 'format', 'm');
    assert.equal(pushActionFor(e), 'fail-path', code);
    assert.equal(queueActionFor(e), 'charge', code);
    assert.equal(exitCodeFor(e), EXIT.environment, code);
  }
  const p = new DaemonProtocolError('garbage');
  assert.equal(pushActionFor(p), 'retry-path');
  assert.equal(queueActionFor(p), 'pause');
});

test("an error that is not Loft's is retried by push and charged by the queue", () => {
  const e = new Error('premature close');
  assert.equal(meaningOf(e), undefined);
  assert.equal(pushActionFor(e), 'retry-path');
  assert.equal(queueActionFor(e), 'charge');
  assert.equal(exitCodeFor(e), EXIT.internal);
});

test('PRUNE_INCOMPLETE means what its cause means', () => {
  const e = new PruneIncompleteError(
    { narInfos: 1, nars: 0 },
    'deleting',
    new S3ServerError(s3Target, s3Failure(503)),
  );
  assert.equal(meaningOf(e), 'retry-request');
  const f = new PruneIncompleteError(
    { narInfos: 1, nars: 0 },
    'deleting',
    new LoftError('S3_UNREACHABLE', 'environment', 'm'),
  );
  assert.equal(meaningOf(f), 'outage');
  assert.equal(exitCodeFor(f), EXIT.environment);
});

/** Every `'CODE', 'kind'` pair written in src/, so the registry's kind cannot drift. */
function literalPairs(): { code: string; kind: string; file: string }[] {
  const out: { code: string; kind: string; file: string }[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts')) {
        const text = readFileSync(p, 'utf8');
        const re =
          /['"]([A-Za-z][A-Za-z0-9_.-]{2,})['"],\s*['"](usage|config|environment|work|format|aborted|internal)['"]/g;
        for (const m of text.matchAll(re)) out.push({ code: m[1]!, kind: m[2]!, file: p });
      }
    }
  };
  walk(join(repoRoot, 'src'));
  return out;
}

test('every error raised in src/ is in the registry with the kind it is raised with', () => {
  const pairs = literalPairs();
  assert.ok(pairs.length >= 60, `found only ${pairs.length} code/kind pairs; is the scan broken?`);
  for (const { code, kind, file } of pairs) {
    assert.ok(isErrorCode(code), `${file}: ${code} is not in src/util/error-codes.ts`);
    assert.equal(ERROR_CODES[code].kind, kind, `${file}: ${code}`);
  }
});

test("README.md's error table matches the registry", () => {
  const current = extractErrorReference(readFileSync(join(repoRoot, 'README.md'), 'utf8'));
  assert.ok(current !== undefined, 'README.md lacks the error-codes markers');
  assert.ok(
    current === renderErrorReference(),
    `README.md's error table is out of date; run: ${ERRORS_REGENERATE}`,
  );
  for (const code of Object.keys(ERROR_CODES)) assert.ok(current.includes(`| \`${code}\` |`), code);
});
