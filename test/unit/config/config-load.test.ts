import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { mkdtempSync, writeFileSync, rmSync, chmodSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stageForOtherUsers } from '../../support/other-user.js';
import {
  checkConfig,
  loadConfig,
  parseConfig,
  ConfigError,
  ConfigSyntaxError,
  ConfigFileMissingError,
  ConfigReadError,
  type LoftConfig,
} from '../../../src/config/index.js';
import { schema, type SchemaKey } from '../../../src/config/schema.js';

const SOURCE = '/etc/loft/loft.toml';
const ENV = { HOME: '/home/u' };

/** The seed README's example loft.toml, verbatim. */
const SEED_EXAMPLE = `[s3]
bucket = "nix-cache"
region = "us-east-1"
endpoint = "http://garage.example.internal:3900"

# Optional: Extra HTTP headers for every S3 request (e.g., Cloudflare Access)
# Inline (non-secret):
# [s3.extra_headers]
# "CF-Access-Client-Id" = "xxx"
# "CF-Access-Client-Secret" = "yyy"

[loft]
upload_threads = 12
scan_on_startup = true
local_cache_path = ".direnv/cache.db"
compression = "zstd"
signing_key_path = "/run/secrets/nix-signing-key"
signing_key_name = "nix-cache"
skip_signed_by_keys = ["cache.nixos.org-1", "nix-community.cachix.org-1"]

# Optional: Pruning configuration
prune_enabled = false
prune_retention_days = 30
# prune_max_size_gb = 1000
# prune_target_percentage = 80
# prune_schedule = "24h"
`;

const MINIMAL = '[s3]\nbucket = "nix-cache"\n';

/** How each schema key shows up in LoftConfig; a new key fails to compile until listed. */
const READ: Record<SchemaKey, (c: LoftConfig) => unknown> = {
  's3.bucket': (c) => c.s3.bucket,
  's3.region': (c) => c.s3.region,
  's3.endpoint': (c) => c.s3.endpoint,
  's3.extra_headers': (c) => c.s3.extraHeaders.toRecord(),
  's3.max_attempts': (c) => c.s3.maxAttempts,
  'loft.upload_threads': (c) => c.uploadThreads,
  'loft.scan_on_startup': (c) => c.scanOnStartup,
  'loft.populate_cache_on_startup': (c) => c.populateCacheOnStartup,
  'loft.local_cache_path': (c) => c.localCachePath,
  'loft.compression': (c) => c.compression,
  'loft.compression_level': (c) => c.compressionLevel,
  'loft.signing_key_path': (c) => c.signingKeyPath,
  'loft.signing_key_name': (c) => c.signingKeyName,
  'loft.skip_signed_by_keys': (c) => c.skipSignedByKeys,
  'loft.exclude_patterns': (c) => c.excludePatterns,
  'loft.include_patterns': (c) => c.includePatterns,
  'loft.upload_build_logs': (c) => c.uploadBuildLogs,
  'loft.prune_enabled': (c) => c.prune.enabled,
  'loft.prune_retention_days': (c) => c.prune.retentionDays,
  'loft.prune_max_size_gb': (c) => c.prune.maxSizeGb,
  'loft.prune_target_percentage': (c) => c.prune.targetPercentage,
  'loft.prune_grace_minutes': (c) => c.prune.graceMinutes,
  'loft.prune_schedule': (c) => c.prune.schedule,
  'loft.log_format': (c) => c.logFormat,
  'loft.progress_interval_seconds': (c) => c.progressIntervalSeconds,
  'loft.write_nar_listing': (c) => c.writeNarListing,
  'loft.daemon_socket': (c) => c.daemonSocket,
  'loft.real_store_dir': (c) => c.realStoreDir,
  'loft.queue_max_attempts': (c) => c.queue.maxAttempts,
  'loft.queue_retry_seconds': (c) => c.queue.retrySeconds,
  'loft.trusted_public_keys': (c) => c.trustedPublicKeys,
  'loft.metrics_listen': (c) => c.metricsListen,
  'loft.cache_control_narinfo': (c) => c.cacheControl.narInfo,
  'loft.cache_control_nar': (c) => c.cacheControl.nar,
};

test('the seed example loft.toml loads with no warnings and its values', () => {
  const { config, warnings } = parseConfig(SEED_EXAMPLE, { source: SOURCE, env: ENV });
  assert.deepEqual(warnings, []);
  assert.equal(config.source, SOURCE);
  assert.equal(config.s3.bucket, 'nix-cache');
  assert.equal(config.s3.region, 'us-east-1');
  assert.equal(config.s3.endpoint, 'http://garage.example.internal:3900');
  assert.equal(config.s3.extraHeaders.size, 0);
  assert.equal(config.uploadThreads, 12);
  assert.equal(config.scanOnStartup, true);
  // Relative paths resolve against the config file's directory.
  assert.equal(config.localCachePath, '/etc/loft/.direnv/cache.db');
  assert.equal(config.compression, 'zstd');
  assert.equal(config.signingKeyPath, '/run/secrets/nix-signing-key');
  assert.equal(config.signingKeyName, 'nix-cache');
  assert.deepEqual(config.skipSignedByKeys, ['cache.nixos.org-1', 'nix-community.cachix.org-1']);
  assert.equal(config.prune.enabled, false);
  assert.equal(config.prune.retentionDays, 30);
  assert.equal(config.prune.maxSizeGb, undefined);
  assert.equal(config.prune.targetPercentage, 80);
  assert.deepEqual(config.prune.schedule, { kind: 'interval', ms: 86_400_000, text: '24h' });
});

test('the seed example with its commented options enabled loads with no warnings', () => {
  const text = SEED_EXAMPLE.replace(/^# (\[s3\.extra_headers\]|"CF|prune_)/gm, '$1');
  assert.match(text, /^prune_schedule = "24h"$/m);
  assert.match(text, /^\[s3\.extra_headers\]$/m);
  const { config, warnings } = parseConfig(text, { source: SOURCE, env: ENV });
  assert.deepEqual(warnings, []);
  assert.deepEqual(config.s3.extraHeaders.toRecord(), {
    'cf-access-client-id': 'xxx',
    'cf-access-client-secret': 'yyy',
  });
  assert.equal(config.prune.maxSizeGb, 1000);
  assert.equal(config.prune.maxSizeBytes, 1000e9);
  assert.equal(config.prune.targetPercentage, 80);
});

test('every key takes its schema default when absent', () => {
  const { config, warnings } = parseConfig(MINIMAL, { source: SOURCE, env: ENV });
  assert.deepEqual(warnings, []);
  const ctx = { configDir: '/etc/loft', env: ENV };
  for (const [key, field] of Object.entries(schema) as [SchemaKey, (typeof schema)[SchemaKey]][]) {
    if (field.required) continue;
    const d = field.defaultValue(ctx);
    assert.ok(d.ok, `${key} has a default`);
    assert.deepEqual(READ[key](config), d.value, key);
  }
  // The decisions written down in the schema, pinned here so a change is deliberate.
  assert.equal(config.s3.region, 'us-east-1');
  assert.equal(config.s3.endpoint, undefined);
  assert.equal(config.s3.maxAttempts, 5);
  assert.equal(config.uploadThreads, 12);
  assert.equal(config.scanOnStartup, false);
  assert.equal(config.populateCacheOnStartup, false);
  assert.equal(config.localCachePath, '/home/u/.local/state/loft/cache.db');
  assert.equal(config.compression, 'zstd');
  assert.equal(config.compressionLevel, undefined);
  assert.equal(config.signingKeyPath, undefined);
  assert.equal(config.signingKeyName, undefined);
  assert.deepEqual(config.skipSignedByKeys, ['cache.nixos.org-1']);
  assert.equal(config.prune.enabled, false);
  assert.equal(config.prune.retentionDays, 30);
  assert.equal(config.prune.maxSizeGb, undefined);
  assert.equal(config.prune.maxSizeBytes, undefined);
  assert.equal(config.prune.targetPercentage, 80);
  assert.deepEqual(config.prune.schedule, { kind: 'interval', ms: 86_400_000, text: '24h' });
  assert.equal(config.logFormat, 'text');
  assert.equal(config.logLevel, 'info');
  assert.equal(config.writeNarListing, false);
  // Unset: the daemon client searches ($NIX_DAEMON_SOCKET_PATH, the default socket, stdio).
  assert.equal(config.daemonSocket, undefined);
  assert.deepEqual(config.trustedPublicKeys, []);
  assert.equal(config.metricsListen, undefined);
  assert.deepEqual(config.cacheControl, { narInfo: undefined, nar: undefined });
});

test('every key is read from the file when set', () => {
  const text = `
[s3]
bucket = "my.cache-1"
region = "garage"
endpoint = "https://s3.example.com:8443/base/"
max_attempts = 9

[s3.extra_headers]
"X-Proxy-Id" = "abc-123"

[loft]
upload_threads = 3
scan_on_startup = true
populate_cache_on_startup = true
local_cache_path = "~/loft/index.db"
compression = "xz"
compression_level = 9
signing_key_path = "keys/cache.sec"
signing_key_name = "cache.example.org-1"
skip_signed_by_keys = ["a-1", "b-2:AAAA", "a-1"]
prune_enabled = true
prune_retention_days = 7
prune_max_size_gb = 0.5
prune_target_percentage = 60
prune_grace_minutes = 0
prune_schedule = "03:30"
log_format = "json"
progress_interval_seconds = 30
write_nar_listing = true
daemon_socket = "/run/nix/socket"
real_store_dir = "/srv/chroot/nix/store"
queue_max_attempts = 2
queue_retry_seconds = 5
exclude_patterns = ["-source$", "^secret"]
include_patterns = ["."]
upload_build_logs = true
metrics_listen = ":9464"
cache_control_narinfo = "public, max-age=300"
cache_control_nar = "public, max-age=31536000, immutable"
trusted_public_keys = ["other.example.org-1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]
`;
  const { config, warnings } = parseConfig(text, { source: SOURCE, env: ENV });
  assert.deepEqual(warnings, []);
  const expected: Record<SchemaKey, unknown> = {
    's3.bucket': 'my.cache-1',
    's3.region': 'garage',
    's3.endpoint': 'https://s3.example.com:8443/base',
    's3.extra_headers': { 'x-proxy-id': 'abc-123' },
    's3.max_attempts': 9,
    'loft.upload_threads': 3,
    'loft.scan_on_startup': true,
    'loft.populate_cache_on_startup': true,
    'loft.local_cache_path': '/home/u/loft/index.db',
    'loft.compression': 'xz',
    'loft.compression_level': 9,
    'loft.signing_key_path': '/etc/loft/keys/cache.sec',
    'loft.signing_key_name': 'cache.example.org-1',
    'loft.skip_signed_by_keys': ['a-1', 'b-2'],
    'loft.exclude_patterns': ['-source$', '^secret'],
    'loft.include_patterns': ['.'],
    'loft.upload_build_logs': true,
    'loft.prune_enabled': true,
    'loft.prune_retention_days': 7,
    'loft.prune_max_size_gb': 0.5,
    'loft.prune_target_percentage': 60,
    'loft.prune_grace_minutes': 0,
    'loft.prune_schedule': { kind: 'daily', hour: 3, minute: 30, utc: false, text: '03:30' },
    'loft.log_format': 'json',
    'loft.progress_interval_seconds': 30,
    'loft.write_nar_listing': true,
    'loft.daemon_socket': '/run/nix/socket',
    'loft.real_store_dir': '/srv/chroot/nix/store',
    'loft.queue_max_attempts': 2,
    'loft.queue_retry_seconds': 5,
    'loft.trusted_public_keys': [
      'other.example.org-1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
    ],
    'loft.metrics_listen': { host: '127.0.0.1', port: 9464 },
    'loft.cache_control_narinfo': 'public, max-age=300',
    'loft.cache_control_nar': 'public, max-age=31536000, immutable',
  };
  for (const key of Object.keys(schema) as SchemaKey[]) {
    assert.deepEqual(READ[key](config), expected[key], key);
  }
  assert.equal(config.prune.maxSizeBytes, 500_000_000);
});

test('default paths follow systemd STATE_DIRECTORY, then XDG_STATE_HOME, then HOME', () => {
  const at = (env: Record<string, string>) =>
    parseConfig(MINIMAL, { source: SOURCE, env }).config.localCachePath;
  assert.equal(at({ STATE_DIRECTORY: '/var/lib/loft', HOME: '/root' }), '/var/lib/loft/cache.db');
  assert.equal(at({ STATE_DIRECTORY: '/var/lib/loft:/var/lib/other' }), '/var/lib/loft/cache.db');
  assert.equal(at({ XDG_STATE_HOME: '/x/state', HOME: '/h' }), '/x/state/loft/cache.db');
  assert.equal(at({ HOME: '/h' }), '/h/.local/state/loft/cache.db');
  const r = checkConfig(MINIMAL, { source: SOURCE, env: {} });
  assert.equal(r.ok, false);
  assert.ok(!r.ok && r.issues.some((i) => i.path === 'loft.local_cache_path'));
  // $NIX_DAEMON_SOCKET_PATH is the daemon client's to follow, not copied into the config: a
  // daemon_socket in the config means "only this socket".
  assert.equal(
    parseConfig(MINIMAL, { source: SOURCE, env: { HOME: '/h', NIX_DAEMON_SOCKET_PATH: '/s' } })
      .config.daemonSocket,
    undefined,
  );
});

test('CLI overrides: --debug sets the log level, --log-format beats log_format', () => {
  const text = `${MINIMAL}[loft]\nlog_format = "json"\n`;
  const plain = parseConfig(text, { source: SOURCE, env: ENV }).config;
  assert.equal(plain.logLevel, 'info');
  assert.equal(plain.logFormat, 'json');
  const o = parseConfig(text, {
    source: SOURCE,
    env: ENV,
    overrides: { debug: true, logFormat: 'text' },
  }).config;
  assert.equal(o.logLevel, 'debug');
  assert.equal(o.logFormat, 'text');
});

test('unknown keys and sections are warnings naming them, with a suggestion for typos', () => {
  const text = `[s3]
bucket = "nix-cache"
bukcet_typo = 1

[loft]
some_new_feature_flag = true
uplod_threads = 4

[lfot]
x = 1

[totally_new]
`;
  const { config, warnings } = parseConfig(text, { source: SOURCE, env: ENV });
  assert.equal(config.uploadThreads, 12, 'a misspelt key does not set the real one');
  const byPath = new Map(warnings.map((w) => [w.path, w]));
  assert.deepEqual([...byPath.keys()].sort(), [
    'lfot',
    'loft.some_new_feature_flag',
    'loft.uplod_threads',
    's3.bukcet_typo',
    'totally_new',
  ]);
  assert.match(byPath.get('loft.uplod_threads')!.message, /did you mean upload_threads\?/);
  assert.match(byPath.get('lfot')!.message, /did you mean \[loft\]\?/);
  assert.doesNotMatch(byPath.get('loft.some_new_feature_flag')!.message, /did you mean/);
  assert.equal(byPath.get('loft.some_new_feature_flag')!.line, 6);
  assert.equal(byPath.get('lfot')!.line, 9);
});

test('cross-key rules: compression level range per compressor, and no-effect warnings', () => {
  const lvl = (c: string, l: number) =>
    checkConfig(`${MINIMAL}[loft]\ncompression = "${c}"\ncompression_level = ${l}\n`, {
      source: SOURCE,
      env: ENV,
    });
  assert.equal(lvl('zstd', 19).ok, true);
  assert.equal(lvl('xz', 9).ok, true);
  const xz = lvl('xz', 12);
  assert.ok(!xz.ok);
  assert.match(xz.issues[0]!.message, /12 is out of range for xz; expected 0 to 9/);
  assert.equal(xz.issues[0]!.line, 5);
  assert.ok(!lvl('zstd', 0).ok);
  const none = lvl('none', 3);
  assert.ok(none.ok);
  assert.deepEqual(
    none.warnings.map((w) => w.path),
    ['loft.compression_level'],
  );

  const w = parseConfig(
    `${MINIMAL}[loft]\nprune_target_percentage = 50\nsigning_key_name = "k-1"\n`,
    {
      source: SOURCE,
      env: ENV,
    },
  ).warnings;
  assert.deepEqual(
    w.map((x) => x.path),
    ['loft.prune_target_percentage', 'loft.signing_key_name'],
  );
});

/** Bad variants: each names the file, the key and the line, and what was expected. */
const BAD: { name: string; text: string; path: string; line: number; expect: RegExp }[] = [
  {
    name: 'wrong type',
    text: '[s3]\nbucket = "nix-cache"\n[loft]\nscan_on_startup = "yes"\n',
    path: 'loft.scan_on_startup',
    line: 4,
    expect: /expected true or false, got "yes"/,
  },
  {
    name: 'negative threads',
    text: '[s3]\nbucket = "nix-cache"\n[loft]\nupload_threads = -4\n',
    path: 'loft.upload_threads',
    line: 4,
    expect: /expected an integer from 1 to 256, got -4/,
  },
  {
    name: 'fractional threads',
    text: '[s3]\nbucket = "nix-cache"\n[loft]\nupload_threads = 2.5\n',
    path: 'loft.upload_threads',
    line: 4,
    expect: /expected an integer from 1 to 256, got 2\.5/,
  },
  {
    name: 'bad compression',
    text: '[s3]\nbucket = "nix-cache"\n[loft]\ncompression = "gzip"\n',
    path: 'loft.compression',
    line: 4,
    expect: /expected one of "zstd", "xz", "none", got "gzip"/,
  },
  {
    name: 'bad schedule',
    text: '[s3]\nbucket = "nix-cache"\n[loft]\nprune_schedule = "every day"\n',
    path: 'loft.prune_schedule',
    line: 4,
    expect: /"every day" is not a schedule; expected an interval such as "24h"/,
  },
  {
    name: 'schedule without unit',
    text: '[s3]\nbucket = "nix-cache"\n[loft]\nprune_schedule = "24"\n',
    path: 'loft.prune_schedule',
    line: 4,
    expect: /"24" has no unit/,
  },
  {
    name: 'endpoint not http(s)',
    text: '[s3]\nbucket = "nix-cache"\nendpoint = "ftp://example.com"\n',
    path: 's3.endpoint',
    line: 3,
    expect: /"ftp:\/\/example.com" uses ftp:; expected an http:\/\/ or https:\/\/ URL/,
  },
  {
    name: 'endpoint not a URL',
    text: '[s3]\nbucket = "nix-cache"\nendpoint = "garage:3900 "\n',
    path: 's3.endpoint',
    line: 3,
    expect: /is not a URL|uses garage:/,
  },
  {
    name: 'endpoint with query',
    text: '[s3]\nbucket = "nix-cache"\nendpoint = "http://h:1/?x=1"\n',
    path: 's3.endpoint',
    line: 3,
    expect: /query string or fragment is not allowed/,
  },
  {
    name: 'bucket with uppercase',
    text: '[s3]\nbucket = "Nix_Cache"\n',
    path: 's3.bucket',
    line: 2,
    expect: /"Nix_Cache" contains uppercase letters; bucket names are 3-63 lowercase/,
  },
  {
    name: 'bucket too short',
    text: '[s3]\nbucket = "nc"\n',
    path: 's3.bucket',
    line: 2,
    expect: /is 2 characters long/,
  },
  {
    name: 'bucket like an IP',
    text: '[s3]\nbucket = "10.0.0.1"\n',
    path: 's3.bucket',
    line: 2,
    expect: /IP address/,
  },
  {
    name: 'empty region',
    text: '[s3]\nbucket = "nix-cache"\nregion = ""\n',
    path: 's3.region',
    line: 3,
    expect: /must not be empty/,
  },
  {
    name: 'retention zero',
    text: '[s3]\nbucket = "nix-cache"\n[loft]\nprune_retention_days = 0\n',
    path: 'loft.prune_retention_days',
    line: 4,
    expect: /expected an integer from 1/,
  },
  {
    name: 'target percentage 101',
    text: '[s3]\nbucket = "nix-cache"\n[loft]\nprune_target_percentage = 101\n',
    path: 'loft.prune_target_percentage',
    line: 4,
    expect: /expected an integer from 1 to 100, got 101/,
  },
  {
    name: 'negative grace',
    text: '[s3]\nbucket = "nix-cache"\n[loft]\nprune_grace_minutes = -1\n',
    path: 'loft.prune_grace_minutes',
    line: 4,
    expect: /expected an integer from 0 to 10080, got -1/,
  },
  {
    name: 'negative max size',
    text: '[s3]\nbucket = "nix-cache"\n[loft]\nprune_max_size_gb = -1\n',
    path: 'loft.prune_max_size_gb',
    line: 4,
    expect: /expected a number greater than 0, got -1/,
  },
  {
    name: 'metrics_listen without a port',
    text: '[s3]\nbucket = "nix-cache"\n[loft]\nmetrics_listen = "0.0.0.0"\n',
    path: 'loft.metrics_listen',
    line: 4,
    expect: /"0.0.0.0" must be "PORT", "HOST:PORT" or "\[IPv6\]:PORT"/,
  },
  {
    name: 'cache_control over two lines',
    text: '[s3]\nbucket = "nix-cache"\n[loft]\ncache_control_nar = "public\\nmax-age=1"\n',
    path: 'loft.cache_control_nar',
    line: 4,
    expect: /must be a non-empty header value on one line/,
  },
  {
    name: 'trusted key that is not a public key',
    text: '[s3]\nbucket = "nix-cache"\n[loft]\ntrusted_public_keys = ["cache.example.org-1"]\n',
    path: 'loft.trusted_public_keys',
    line: 4,
    expect: /"cache.example.org-1" is not a public key/,
  },
  {
    name: 'skip list not an array',
    text: '[s3]\nbucket = "nix-cache"\n[loft]\nskip_signed_by_keys = "cache.nixos.org-1"\n',
    path: 'loft.skip_signed_by_keys',
    line: 4,
    expect: /expected an array of strings/,
  },
  {
    name: 'signing key name with colon',
    text: '[s3]\nbucket = "nix-cache"\n[loft]\nsigning_key_name = "a:b"\n',
    path: 'loft.signing_key_name',
    line: 4,
    expect: /without ":"/,
  },
  {
    name: 'date instead of string',
    text: '[s3]\nbucket = 2024-01-01\n',
    path: 's3.bucket',
    line: 2,
    expect: /expected a string, got a date/,
  },
];

for (const bad of BAD) {
  test(`bad config (${bad.name}) names file, key, line and expectation`, () => {
    assert.throws(
      () => parseConfig(bad.text, { source: SOURCE, env: ENV }),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError, String(e));
        assert.equal(e.code, 'config.invalid');
        assert.equal(e.kind, 'config');
        assert.equal(e.issues.length, 1, e.message);
        assert.equal(e.issues[0]!.path, bad.path);
        assert.equal(e.issues[0]!.line, bad.line);
        assert.match(e.issues[0]!.message, bad.expect);
        assert.ok(
          e.message.includes(`${SOURCE}:${bad.line}: ${bad.path}: `),
          `message names file:line: key: ${e.message}`,
        );
        assert.ok(e.hint);
        return true;
      },
    );
  });
}

test('a missing bucket (or a missing [s3]) is an error naming s3.bucket', () => {
  for (const text of ['[loft]\nupload_threads = 2\n', '[s3]\nregion = "x"\n', '']) {
    assert.throws(
      () => parseConfig(text, { source: SOURCE, env: ENV }),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.issues.length === 1 &&
        e.issues[0]!.path === 's3.bucket' &&
        /is required but missing/.test(e.message) &&
        e.message.includes(SOURCE),
    );
  }
});

test('[s3] that is not a table is an error, not a crash', () => {
  const r = checkConfig('s3 = "nix-cache"\n', { source: SOURCE, env: ENV });
  assert.ok(!r.ok);
  assert.deepEqual(
    r.issues.map((i) => [i.path, i.line]),
    [
      ['s3', 1],
      ['s3.bucket', undefined],
    ],
  );
});

test('a bad regular expression in exclude_patterns or include_patterns names the key, item and pattern', () => {
  const text =
    '[s3]\nbucket = "nix-cache"\n[loft]\nexclude_patterns = ["ok", "(unclosed"]\ninclude_patterns = ["[z-a]"]\n';
  const r = checkConfig(text, { source: SOURCE, env: ENV });
  assert.ok(!r.ok);
  assert.deepEqual(
    r.issues.map((i) => [i.path, i.line]),
    [
      ['loft.exclude_patterns', 4],
      ['loft.include_patterns', 5],
    ],
  );
  assert.match(r.issues[0]!.message, /item 2: "\(unclosed" is not a valid regular expression/);
  assert.match(r.issues[1]!.message, /item 1: "\[z-a\]" is not a valid regular expression/);
  assert.throws(() => parseConfig(text, { source: SOURCE, env: ENV }), ConfigError);
});

test('all problems are reported at once', () => {
  const text = '[s3]\nbucket = "X"\n[loft]\nupload_threads = 0\ncompression = "lz4"\n';
  assert.throws(
    () => parseConfig(text, { source: SOURCE, env: ENV }),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.deepEqual(
        e.issues.map((i) => i.path),
        ['s3.bucket', 'loft.upload_threads', 'loft.compression'],
      );
      assert.match(e.message, /\(3 problems\)/);
      return true;
    },
  );
});

test('a TOML syntax error gives file, line, column and key, and never the line text', () => {
  const secret = 'SeCrEt-Value-4711';
  const text = `[s3]\nbucket = "nix-cache"\n[s3.extra_headers]\nX-Token = "${secret}\n`;
  assert.throws(
    () => parseConfig(text, { source: SOURCE, env: ENV }),
    (e: unknown) => {
      assert.ok(e instanceof ConfigSyntaxError);
      assert.equal(e.code, 'config.syntax');
      assert.equal(e.kind, 'config');
      assert.equal(e.line, 4);
      assert.ok(e.column > 0);
      assert.equal(e.issues[0]!.path, 's3.extra_headers.X-Token');
      assert.ok(e.message.startsWith(`invalid TOML in ${SOURCE}:4:`), e.message);
      assert.ok(!e.message.includes(secret), 'message leaks the line');
      assert.ok(!inspect(e, { depth: 10 }).includes(secret), 'inspect leaks the line');
      assert.ok(!JSON.stringify(e).includes(secret));
      return true;
    },
  );
  const dup = checkConfig('[s3]\nbucket = "a-b-c"\nbucket = "d-e-f"\n', {
    source: SOURCE,
    env: ENV,
  });
  assert.ok(!dup.ok);
  assert.equal(dup.issues[0]!.line, 3);
  assert.ok(dup.syntax instanceof ConfigSyntaxError);
});

test('a secret header value never appears in errors, warnings or inspect output', () => {
  const secret = 'hunter2-very-secret';
  const cases = [
    // a bad name next to a secret value
    `[s3]\nbucket = "nix-cache"\n[s3.extra_headers]\n"Bad Name" = "${secret}"\n`,
    // a reserved name with a secret value
    `[s3]\nbucket = "nix-cache"\n[s3.extra_headers]\nAuthorization = "${secret}"\n`,
    // a value of the wrong type
    `[s3]\nbucket = "nix-cache"\n[s3.extra_headers]\nX-A = ["${secret}"]\n`,
    // a value with a line break
    `[s3]\nbucket = "nix-cache"\n[s3.extra_headers]\nX-A = "${secret}\\r\\n"\n`,
  ];
  for (const text of cases) {
    assert.throws(
      () => parseConfig(text, { source: SOURCE, env: ENV }),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError, String(e));
        assert.ok(e.message.includes(SOURCE));
        assert.ok(e.message.includes('s3.extra_headers'), e.message);
        assert.ok(!e.message.includes(secret), e.message);
        assert.ok(!inspect(e, { depth: 10 }).includes(secret));
        return true;
      },
    );
  }
  const ok = parseConfig(
    `${cases[0]!.split('[s3.extra_headers]')[0]}[s3.extra_headers]\nX-A = "${secret}"\n`,
    {
      source: SOURCE,
      env: ENV,
    },
  );
  assert.ok(!inspect(ok, { depth: 10 }).includes(secret), 'inspect of the config leaks');
  assert.ok(!JSON.stringify(ok).includes(secret), 'JSON of the config leaks');
  assert.equal(ok.config.s3.extraHeaders.toRecord()['x-a'], secret);
});

test('credentials in the endpoint URL are refused without echoing them', () => {
  assert.throws(
    () =>
      parseConfig('[s3]\nbucket = "nix-cache"\nendpoint = "http://AKIAX:pa55word@h:9000"\n', {
        source: SOURCE,
        env: ENV,
      }),
    (e: unknown) =>
      e instanceof ConfigError &&
      /credentials in the URL are not allowed/.test(e.message) &&
      e.message.includes('http://h:9000') &&
      !e.message.includes('pa55word') &&
      !e.message.includes('AKIAX'),
  );
});

test('loadConfig reads the file, and reports a missing or unreadable file clearly', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loft-config-'));
  try {
    writeFileSync(join(dir, 'loft.toml'), SEED_EXAMPLE);
    const { config, warnings } = await loadConfig({ path: 'loft.toml', cwd: dir, env: ENV });
    assert.deepEqual(warnings, []);
    assert.equal(config.source, join(dir, 'loft.toml'));
    assert.equal(config.localCachePath, join(dir, '.direnv/cache.db'));

    await assert.rejects(
      loadConfig({ path: 'nope.toml', cwd: dir, env: ENV, explicit: false }),
      (e: unknown) =>
        e instanceof ConfigFileMissingError &&
        e.kind === 'config' &&
        e.message.includes(join(dir, 'nope.toml')) &&
        /\[s3\]\n\s*bucket = /.test(e.hint ?? '') &&
        /-c\/--config/.test(e.hint ?? ''),
    );
    mkdirSync(join(dir, 'adir'));
    await assert.rejects(
      loadConfig({ path: 'adir', cwd: dir, env: ENV }),
      (e: unknown) => e instanceof ConfigReadError && /it is a directory/.test(e.message),
    );
    if (process.getuid?.() !== 0) {
      writeFileSync(join(dir, 'locked.toml'), MINIMAL);
      chmodSync(join(dir, 'locked.toml'), 0o000);
      await assert.rejects(
        loadConfig({ path: 'locked.toml', cwd: dir, env: ENV }),
        (e: unknown) => e instanceof ConfigReadError && /permission denied/.test(e.message),
      );
    } else {
      // Root reads anything: the same check, made as an unprivileged user.
      const staged = stageForOtherUsers(['dist/src', 'node_modules/smol-toml'], {
        'load.mjs': `import { loadConfig } from './dist/src/config/index.js';
try {
  await loadConfig({ path: process.argv[2], env: { HOME: '/nonexistent' } });
  console.log(JSON.stringify({ loaded: true }));
} catch (e) {
  console.log(JSON.stringify({ name: e.constructor.name, message: e.message }));
}`,
        'locked.toml': MINIMAL,
      });
      try {
        chmodSync(join(staged.dir, 'locked.toml'), 0o000);
        const r = await staged.run('nobody', 'load.mjs', [join(staged.dir, 'locked.toml')]);
        assert.equal(r.code, 0, r.stderr);
        const out = JSON.parse(r.stdout) as { name?: string; message?: string };
        assert.equal(out.name, 'ConfigReadError', r.stdout);
        assert.match(out.message ?? '', /permission denied/);
      } finally {
        staged.cleanup();
      }
    }
    writeFileSync(join(dir, 'bad.toml'), '[s3\n');
    await assert.rejects(
      loadConfig({ path: join(dir, 'bad.toml'), env: ENV }),
      (e: unknown) =>
        e instanceof ConfigSyntaxError && e.message.includes(`${join(dir, 'bad.toml')}:1:`),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a UTF-8 BOM and CRLF line endings are accepted, and lines still found', () => {
  assert.equal(
    parseConfig(`\uFEFF${MINIMAL}`, { source: SOURCE, env: ENV }).config.s3.bucket,
    'nix-cache',
  );
  const r = checkConfig('[s3]\r\nbucket = "nix-cache"\r\n[loft]\r\nupload_threads = 0\r\n', {
    source: SOURCE,
    env: ENV,
  });
  assert.ok(!r.ok);
  assert.deepEqual(
    r.issues.map((i) => [i.path, i.line]),
    [['loft.upload_threads', 4]],
  );
});
