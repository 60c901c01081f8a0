import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CliLogger,
  isSecretFieldName,
  secretsFromEnv,
  REDACTED,
  type LoggerOptions,
} from '../../../src/cli/logger.js';

const NOW = new Date('2024-05-01T12:34:56.789Z');

function capture(opts: LoggerOptions = {}) {
  const lines: string[] = [];
  const stream = { write: (s: string) => lines.push(s), isTTY: false };
  const logger = new CliLogger({ stream, now: () => NOW, ...opts });
  return { logger, lines, text: () => lines.join('') };
}

test('text lines: ISO time, padded level, message, key=value fields', () => {
  const { logger, lines } = capture();
  logger.info('uploaded', {
    path: '/nix/store/abc-hello',
    bytes: 1234,
    fresh: true,
    none: null,
    skip: undefined,
  });
  logger.warn('odd value', { note: 'two words', eq: 'a=b', empty: '', q: 'say "hi"', nl: 'a\nb' });
  assert.deepEqual(lines, [
    '2024-05-01T12:34:56.789Z INFO  uploaded path=/nix/store/abc-hello bytes=1234 fresh=true none=null\n',
    '2024-05-01T12:34:56.789Z WARN  odd value note="two words" eq="a=b" empty="" q="say \\"hi\\"" nl="a\\nb"\n',
  ]);
});

test('on a terminal: short local clock time, and colour only when allowed', () => {
  const lines: string[] = [];
  const tty = { write: (s: string) => lines.push(s), isTTY: true };
  new CliLogger({ stream: tty, now: () => NOW, env: {} }).error('x');
  new CliLogger({ stream: tty, now: () => NOW, env: { NO_COLOR: '1' } }).error('x');
  const clock = /^\d{2}:\d{2}:\d{2}\.789 /;
  assert.match(lines[0]!, clock);
  assert.ok(lines[0]!.includes('\x1b[31mERROR\x1b[0m x'), JSON.stringify(lines[0]));
  assert.match(lines[1]!, clock);
  assert.ok(!lines[1]!.includes('\x1b['));
  const plain = capture({ time: 'none' });
  plain.logger.info('x');
  assert.deepEqual(plain.lines, ['INFO  x\n']);
});

test('levels: debug hidden unless level is debug', () => {
  const info = capture();
  info.logger.debug('hidden');
  info.logger.info('shown');
  assert.equal(info.lines.length, 1);
  assert.equal(info.logger.enabled('debug'), false);
  const debug = capture({ level: 'debug' });
  debug.logger.debug('detail', { n: 1 });
  assert.match(debug.lines[0]!, /DEBUG detail n=1/);
  const quiet = capture({ level: 'warn' });
  quiet.logger.info('no');
  quiet.logger.warn('yes');
  quiet.logger.error('yes');
  assert.equal(quiet.lines.length, 2);
});

test('JSON lines: one object per line with time, level, msg, event ("log" by default) and the fields', () => {
  const { logger, lines } = capture({ format: 'json', level: 'debug' });
  logger.info('uploaded', {
    path: '/nix/store/abc-hello',
    bytes: 1234,
    ok: true,
    none: null,
    skip: undefined,
  });
  logger.debug('multi\nline', { msg: 'collides', level: 'also' });
  assert.equal(lines.length, 2);
  for (const l of lines) {
    assert.ok(l.endsWith('\n'));
    assert.equal(l.indexOf('\n'), l.length - 1, 'exactly one line');
  }
  assert.deepEqual(JSON.parse(lines[0]!), {
    time: '2024-05-01T12:34:56.789Z',
    level: 'info',
    msg: 'uploaded',
    event: 'log',
    path: '/nix/store/abc-hello',
    bytes: 1234,
    ok: true,
    none: null,
  });
  assert.deepEqual(JSON.parse(lines[1]!), {
    time: '2024-05-01T12:34:56.789Z',
    level: 'debug',
    msg: 'multi\nline',
    event: 'log',
    field_msg: 'collides',
    field_level: 'also',
  });
});

test('secret-looking field names are masked; metadata about secrets is not', () => {
  for (const n of [
    'secret',
    'secretAccessKey',
    'aws_secret_access_key',
    'password',
    'token',
    'sessionToken',
    'authorization',
    'Cookie',
    'credentials',
    'privateKey',
    'signingKey',
    'accessKeyId',
    'apiKey',
    'keyMaterial',
    'headerValue',
    'cf-access-client-secret',
  ]) {
    assert.ok(isSecretFieldName(n), n);
  }
  for (const n of [
    'path',
    'key',
    'bucket',
    'signingKeyPath',
    'signingKeyName',
    'header',
    'tokenCount',
    'narSize',
  ]) {
    assert.ok(!isSecretFieldName(n), n);
  }
  for (const format of ['text', 'json'] as const) {
    const { logger, text } = capture({ format });
    logger.info('headers', {
      'cf-access-client-secret': 'abc123xyz',
      key: 'nar/x.nar.zst',
      token: 42,
    });
    assert.ok(!text().includes('abc123xyz'), text());
    assert.ok(!text().includes('42'), text());
    assert.ok(text().includes('nar/x.nar.zst'));
    assert.ok(text().includes(REDACTED));
  }
});

test('registered secret values are masked anywhere, in messages and fields', () => {
  const headerValue = 'cf-secret-5f1e2d';
  const awsSecret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
  for (const format of ['text', 'json'] as const) {
    const { logger, text } = capture({ format, secrets: [headerValue, undefined, 'ab'] });
    logger.addSecrets([awsSecret]);
    logger.error(`request failed: header was ${headerValue}`, {
      detail: `x ${awsSecret} y`,
      short: 'ab',
    });
    assert.ok(!text().includes(headerValue), text());
    assert.ok(!text().includes(awsSecret), text());
    assert.ok(text().includes('ab'), 'secrets shorter than 4 characters are not masked everywhere');
  }
});

test('credentials in URLs and Authorization-style pairs are masked in free text', () => {
  const { logger, text } = capture();
  logger.warn(
    'GET http://user:pa55word@h:9000/b failed; Authorization: AWS4-HMAC-SHA256xyz x-amz-security-token=tok123',
  );
  assert.ok(!text().includes('pa55word'), text());
  assert.ok(!text().includes('AWS4-HMAC-SHA256xyz'));
  assert.ok(!text().includes('tok123'));
  assert.match(text(), /http:\/\/user:\[redacted\]@h:9000\/b/);
});

test('secretsFromEnv collects the AWS secret, session token and extra header values', () => {
  assert.deepEqual(
    secretsFromEnv({
      AWS_SECRET_ACCESS_KEY: 's1',
      AWS_SESSION_TOKEN: 's2',
      AWS_ACCESS_KEY_ID: 'id',
      LOFT_EXTRA_HEADER_CF_ACCESS_CLIENT_SECRET: 's3',
      HOME: '/root',
      LOFT_EXTRA_HEADER_X: undefined,
    }).sort(),
    ['s1', 's2', 's3'],
  );
});

test('text lines drop the event and fields the message already says; long lists become one line', () => {
  const { logger, lines } = capture();
  logger.info('uploaded /nix/store/abc-hello', {
    event: 'uploaded',
    path: '/nix/store/abc-hello',
    narSize: 10,
  });
  const paths = Array.from({ length: 20 }, (_, i) => `/nix/store/${String(i).padStart(32, 'a')}-p`);
  logger.info('queued 25 paths', { paths: `${paths.join(' ')} …(+5)` });
  assert.equal(
    lines[0],
    '2024-05-01T12:34:56.789Z INFO  uploaded /nix/store/abc-hello narSize=10\n',
  );
  assert.equal(lines[1]!.indexOf('\n'), lines[1]!.length - 1, 'one line');
  assert.ok(lines[1]!.length < 260, lines[1]);
  // 25 paths in all: the ones shown plus "+N more" add up.
  const shown = lines[1]!.match(/\/nix\/store\//g)!.length;
  assert.match(lines[1]!, new RegExp(`…\\(\\+${25 - shown} more\\)"\\n$`));
});

test('JSON lines nest dotted fields (error.code) and keep the event they were given', () => {
  const { logger, lines } = capture({ format: 'json' });
  logger.error('failed x', { event: 'path-failed', path: 'x', 'error.code': 'S3_ACCESS_DENIED' });
  const o = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.equal(o.event, 'path-failed');
  assert.deepEqual(o.error, { code: 'S3_ACCESS_DENIED' });
});

test('redirect sends every line elsewhere until restored', () => {
  const { logger, lines } = capture();
  const taken: string[] = [];
  const restore = logger.redirect((s) => taken.push(s));
  logger.warn('SIGINT: finishing uploads in flight');
  restore();
  logger.info('after');
  assert.equal(taken.length, 1);
  assert.match(taken[0]!, /SIGINT: finishing/);
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /after/);
});

test('on stderr (where info lines are written a turn of the event loop late), every line arrives in order around a warning, including one logged just before an uncaught exception', async () => {
  const { spawn } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const logger = fileURLToPath(new URL('../../../src/cli/logger.js', import.meta.url));
  const script = `
    import { CliLogger } from ${JSON.stringify(logger)};
    const log = new CliLogger({ format: 'text', time: 'none' });
    for (let i = 0; i < 50; i++) log.info('line ' + i);
    log.warn('warned');
    log.info('after');
    setImmediate(() => { log.info('last before crash'); throw new Error('boom'); });
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const code = await new Promise<number | null>((r) => child.on('close', r));
  assert.notEqual(code, 0);
  const lines = err.split('\n').filter((l) => /^(INFO|WARN)/.test(l));
  assert.deepEqual(lines, [
    ...Array.from({ length: 50 }, (_, i) => `INFO  line ${i}`),
    'WARN  warned',
    'INFO  after',
    'INFO  last before crash',
  ]);
});
