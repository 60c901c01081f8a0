import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import {
  checkHeaderName,
  checkHeaderValue,
  headerNameFromEnv,
  mergeExtraHeaders,
  ExtraHeaders,
  RESERVED_HEADER_NAMES,
} from '../../../src/config/extra-headers.js';
import { parseConfig, ConfigError } from '../../../src/config/index.js';

const SECRET = 'sUp3r-s3cret-t0ken';

test('env variable names map to header names: prefix stripped, _ to -, lower case', () => {
  assert.equal(headerNameFromEnv('LOFT_EXTRA_HEADER_CF_ACCESS_CLIENT_ID'), 'cf-access-client-id');
  assert.equal(headerNameFromEnv('LOFT_EXTRA_HEADER_X'), 'x');
  assert.equal(headerNameFromEnv('LOFT_EXTRA_HEADER_'), '');
  assert.equal(headerNameFromEnv('LOFT_EXTRA_HEADERS_X'), undefined);
  assert.equal(headerNameFromEnv('loft_extra_header_x'), undefined);
  assert.equal(headerNameFromEnv('AWS_SECRET_ACCESS_KEY'), undefined);
});

test('file and env headers merge; env wins for the same header, matched ignoring case', () => {
  const r = mergeExtraHeaders(
    {
      'CF-Access-Client-Id': 'file-id',
      'CF-Access-Client-Secret': 'file-secret',
      'X-Only-File': 'f',
    },
    {
      LOFT_EXTRA_HEADER_CF_ACCESS_CLIENT_SECRET: SECRET,
      LOFT_EXTRA_HEADER_X_ONLY_ENV: 'e',
      PATH: '/bin',
      LOFT_EXTRA_HEADER_UNSET: undefined,
    },
  );
  assert.deepEqual(r.issues, []);
  assert.deepEqual(r.headers.toRecord(), {
    'cf-access-client-id': 'file-id',
    'cf-access-client-secret': SECRET,
    'x-only-env': 'e',
    'x-only-file': 'f',
  });
  assert.deepEqual(r.warnings, [
    {
      path: 's3.extra_headers.CF-Access-Client-Secret',
      message:
        "also set by LOFT_EXTRA_HEADER_CF_ACCESS_CLIENT_SECRET; the environment's value is used",
    },
  ]);
  assert.deepEqual(r.headers.describe(), [
    { name: 'cf-access-client-id', source: 'file', origin: 's3.extra_headers.CF-Access-Client-Id' },
    {
      name: 'cf-access-client-secret',
      source: 'env',
      origin: 'env.LOFT_EXTRA_HEADER_CF_ACCESS_CLIENT_SECRET',
    },
    { name: 'x-only-env', source: 'env', origin: 'env.LOFT_EXTRA_HEADER_X_ONLY_ENV' },
    { name: 'x-only-file', source: 'file', origin: 's3.extra_headers.X-Only-File' },
  ]);
  for (const w of r.warnings) assert.ok(!JSON.stringify(w).includes(SECRET));
});

test('the same header twice in one source (differing in case) is an error', () => {
  const f = mergeExtraHeaders({ 'X-A': '1', 'x-a': '2' }, {});
  assert.equal(f.issues.length, 1);
  assert.equal(f.issues[0]!.path, 's3.extra_headers.x-a');
  assert.match(f.issues[0]!.message, /set twice, also as "X-A"/);
  const e = mergeExtraHeaders({}, { LOFT_EXTRA_HEADER_X_A: '1', LOFT_EXTRA_HEADER_x_a: '2' });
  assert.equal(e.issues.length, 1);
  assert.match(e.issues[0]!.message, /sets x-a, which LOFT_EXTRA_HEADER_X_A also sets/);
});

test('header names must be RFC 9110 tokens', () => {
  for (const good of ['X-Foo', 'CF-Access-Client-Id', "a!#$%&'*+-.^_`|~z", 'x1']) {
    assert.equal(checkHeaderName(good), undefined, good);
  }
  for (const bad of ['', 'Bad Name', 'x:y', 'x(y)', 'ü', 'a"b', 'a/b', 'a\tb']) {
    assert.ok(checkHeaderName(bad), `${JSON.stringify(bad)} should be rejected`);
  }
});

test('headers the HTTP client or SigV4 own are refused with the reason', () => {
  const framing = [
    'Host',
    'content-length',
    'Transfer-Encoding',
    'Connection',
    'Keep-Alive',
    'TE',
    'Upgrade',
    'Expect',
  ];
  for (const n of framing) assert.match(checkHeaderName(n)!, /connection and message framing/, n);
  const signed = [
    'Authorization',
    'Content-Type',
    'Content-MD5',
    'Date',
    'If-None-Match',
    'X-Amz-Date',
    'x-amz-content-sha256',
    'X-AMZ-Security-Token',
    'amz-sdk-invocation-id',
  ];
  for (const n of signed) assert.match(checkHeaderName(n)!, /sets and signs it \(SigV4\)/, n);
  for (const n of RESERVED_HEADER_NAMES) assert.ok(checkHeaderName(n), n);
  // Proxy headers and cookies are the point of the feature.
  for (const n of ['CF-Access-Client-Secret', 'Cookie', 'User-Agent', 'X-Amzn-Trace']) {
    assert.equal(checkHeaderName(n), undefined, n);
  }
});

test('values: no CR, LF, NUL or controls, not empty, and never quoted in the problem', () => {
  assert.equal(checkHeaderValue('abc def\tghi'), undefined);
  assert.equal(checkHeaderValue('välue'), undefined);
  const bad: [string, RegExp][] = [
    [`${SECRET}\n`, /line break/],
    [`${SECRET}\r`, /line break/],
    [`a\r\nX-Injected: 1`, /line break/],
    [`${SECRET}\0`, /NUL/],
    [`${SECRET}\x07`, /control character/],
    [`${SECRET}\x7f`, /control character/],
    ['', /empty/],
    ['   ', /empty/],
  ];
  for (const [v, why] of bad) {
    const p = checkHeaderValue(v);
    assert.ok(p, JSON.stringify(v));
    assert.match(p, why);
    assert.ok(!p.includes(SECRET));
  }
});

test('bad env headers are issues naming the variable, never the value', () => {
  const r = mergeExtraHeaders(
    {},
    {
      LOFT_EXTRA_HEADER_: SECRET,
      LOFT_EXTRA_HEADER_HOST: SECRET,
      LOFT_EXTRA_HEADER_X_A: `${SECRET}\n`,
      'LOFT_EXTRA_HEADER_X Y': SECRET,
    },
  );
  assert.deepEqual(
    r.issues.map((i) => i.path),
    [
      'env.LOFT_EXTRA_HEADER_',
      'env.LOFT_EXTRA_HEADER_HOST',
      'env.LOFT_EXTRA_HEADER_X Y',
      'env.LOFT_EXTRA_HEADER_X_A',
    ],
  );
  assert.ok(!JSON.stringify(r.issues).includes(SECRET));
  assert.equal(r.headers.size, 0);
});

test('through parseConfig: env headers merge with the file, bad ones fail naming the variable', () => {
  const text = '[s3]\nbucket = "nix-cache"\n[s3.extra_headers]\n"CF-Access-Client-Id" = "id"\n';
  const { config, warnings } = parseConfig(text, {
    source: '/c/loft.toml',
    env: { HOME: '/h', LOFT_EXTRA_HEADER_CF_ACCESS_CLIENT_SECRET: SECRET },
  });
  assert.deepEqual(warnings, []);
  assert.deepEqual(config.s3.extraHeaders.toRecord(), {
    'cf-access-client-id': 'id',
    'cf-access-client-secret': SECRET,
  });
  assert.throws(
    () =>
      parseConfig(text, {
        source: '/c/loft.toml',
        env: { HOME: '/h', LOFT_EXTRA_HEADER_AUTHORIZATION: SECRET },
      }),
    (e: unknown) =>
      e instanceof ConfigError &&
      e.message.includes(
        'environment variable LOFT_EXTRA_HEADER_AUTHORIZATION: authorization cannot be',
      ) &&
      !e.message.includes(SECRET) &&
      !inspect(e, { depth: 10 }).includes(SECRET),
  );
  // A bad file header gets the line it is on.
  assert.throws(
    () =>
      parseConfig(`${text}"Content-Length" = "1"\n`, {
        source: '/c/loft.toml',
        env: { HOME: '/h' },
      }),
    (e: unknown) =>
      e instanceof ConfigError &&
      e.message.includes('/c/loft.toml:5: s3.extra_headers.Content-Length:'),
  );
});

test('ExtraHeaders keeps values out of inspect, JSON, String and spreads', () => {
  const h = mergeExtraHeaders({ 'X-Token': SECRET }, {}).headers;
  assert.ok(h instanceof ExtraHeaders);
  for (const shown of [
    inspect(h),
    inspect({ h }, { depth: 5 }),
    JSON.stringify(h),
    String(h),
    JSON.stringify({ ...h }),
  ]) {
    assert.ok(!shown.includes(SECRET), shown);
  }
  assert.match(inspect(h), /x-token: \[redacted\]/);
  assert.deepEqual(h.names(), ['x-token']);
  assert.deepEqual(h.secretValues(), [SECRET]);
  assert.equal(h.toRecord()['x-token'], SECRET);
});
