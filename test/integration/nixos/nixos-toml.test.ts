/**
 * The NixOS module's pure parts, evaluated by real Nix (Debian's 2.8) and read back by
 * Loft's own config loader: every .nix file parses; nix/lib.nix passes its Nix unit tests;
 * each generated loft.toml in nix/tests/cases.nix is the expected document and Loft reads it
 * without errors, warning only about the keys extraConfig adds on purpose; the TOML writer
 * round-trips arbitrary documents through a real TOML parser; header names map to the
 * variables Loft reads back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { parse as parseToml } from 'smol-toml';
import { parseConfig, headerNameFromEnv } from '../../../src/config/index.js';
import { nixEval, nixEvalError, nixFiles, nixParse, nixTests, repoRoot } from './nix-eval.js';

const exec = promisify(execFile);
const lib = join(repoRoot, 'nix', 'lib.nix');

interface Case {
  options: { s3: { bucket: string } };
  toml: string;
  document: Record<string, unknown>;
  config: Record<string, unknown>;
  warnings: string[];
  sameAsLoftDefaults: boolean;
}
type Loft = Parameters<CheckCase>[2];
type CheckCase = (
  name: string,
  c: Case,
  loft: { parseConfig: typeof parseConfig; parseToml: typeof parseToml },
) => string[];

const checker = (await import(pathToFileURL(join(nixTests, 'check-toml.mjs')).href)) as {
  checkCase: CheckCase;
};
const loft: Loft = { parseConfig, parseToml };
const cases = await nixEval<Record<string, Case>>({ file: join(nixTests, 'cases.nix') });
const plain = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

test('every .nix file of the flake parses', async () => {
  const files = nixFiles();
  for (const want of ['flake.nix', 'nix/package.nix', 'nix/module.nix', 'nix/lib.nix']) {
    assert.ok(
      files.some((f) => f === join(repoRoot, want)),
      `${want} is among the files checked`,
    );
  }
  assert.ok(files.some((f) => f.endsWith('nix/tests/vm.nix')));
  for (const f of files) await nixParse(f);
  // The check itself must be able to fail.
  const dir = mkdtempSync(join(tmpdir(), 'loft-nixparse-'));
  try {
    writeFileSync(join(dir, 'bad.nix'), '{ a = ; }');
    await assert.rejects(nixParse(join(dir, 'bad.nix')), /syntax error/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('nix/lib.nix passes its Nix unit tests (nix/tests/pure.nix)', async () => {
  const r = await nixEval<{ count: number; failures: unknown[] }>({
    file: join(nixTests, 'pure.nix'),
  });
  assert.deepEqual(r.failures, []);
  assert.ok(r.count >= 35, `only ${r.count} tests ran`);
});

test('the cases cover defaults, every option, extraConfig, pruning on and off, inline headers', () => {
  assert.deepEqual(Object.keys(cases).sort(), [
    'defaults',
    'every-option',
    'extra-config',
    'extra-headers-inline',
    'pruning-off',
    'pruning-on',
  ]);
});

for (const [name, c] of Object.entries(cases)) {
  test(`generated loft.toml "${name}": the expected document, read back by Loft's loader`, () => {
    assert.deepEqual(checker.checkCase(name, c, loft), []);
    // The same, spelled out for the values that matter most, independent of the checker.
    // As the unit runs it: its start script exports the key's credential copy, if any.
    const env = (c.options as { signingKeyPath?: string }).signingKeyPath
      ? { LOFT_SIGNING_KEY_PATH: '/run/credentials/loft.service/signing-key' }
      : {};
    const { config, warnings } = parseConfig(c.toml, { source: '/etc/loft/loft.toml', env });
    const doc = plain(parseToml(c.toml)) as { loft: Record<string, unknown> };
    assert.equal(config.uploadThreads, doc.loft.upload_threads ?? 12);
    assert.deepEqual(
      config.skipSignedByKeys,
      doc.loft.skip_signed_by_keys ?? ['cache.nixos.org-1'],
    );
    assert.equal(config.prune.schedule.text, doc.loft.prune_schedule ?? '24h');
    assert.deepEqual(warnings.map((w) => w.path).sort(), [...c.warnings].sort());
  });
}

test('extraConfig: nested merge, override, unknown keys warned, null removes a key', () => {
  const c = cases['extra-config']!;
  const { config, warnings } = parseConfig(c.toml, { source: '/etc/loft/loft.toml', env: {} });
  assert.equal(config.uploadThreads, 32); // overrides the module's 12
  assert.equal(config.s3.maxAttempts, 8); // a key the module has no option for
  assert.deepEqual(config.s3.extraHeaders.toRecord(), {
    'x-inline': 'inline',
    'x-from-extra': 'extra',
  });
  assert.equal(config.prune.schedule.text, '24h'); // the module's "03:30" removed by null
  assert.deepEqual(warnings.map((w) => w.path).sort(), [
    'future_section',
    'loft.some_new_feature_flag',
  ]);
  assert.doesNotMatch(c.toml, /03:30/);
});

test('every-option: secrets and secret file paths never reach loft.toml', () => {
  const c = cases['every-option']!;
  for (const secretPath of [
    '/run/secrets/s3-access-key',
    '/run/secrets/s3-secret-key',
    '/run/secrets/cf-access-secret',
    '/run/secrets/nix-signing-key',
  ]) {
    assert.ok(!c.toml.includes(secretPath), `${secretPath} appears in loft.toml`);
  }
  // The key's path is not in the file either: each unit's start script exports its own.
  assert.doesNotMatch(c.toml, /signing_key_path/);
});

test('the checker fails on each kind of mismatch (so the flake check can fail)', () => {
  const mutate = (name: string, f: (c: Case) => void): string[] => {
    const c = structuredClone(cases[name]!);
    f(c);
    return checker.checkCase(name, c, loft);
  };
  assert.match(
    mutate('defaults', (c) => (c.config.uploadThreads = 13)).join('\n'),
    /uploadThreads = 12, expected 13/,
  );
  assert.match(
    mutate('extra-config', (c) => (c.warnings = ['future_section'])).join('\n'),
    /warnings .*loft\.some_new_feature_flag/,
  );
  assert.match(
    mutate(
      'pruning-on',
      (c) => ((c.document.loft as Record<string, unknown>).prune_max_size_gb = 1.6),
    ).join('\n'),
    /document differs/,
  );
  // A module default that drifts from Loft's own default is caught.
  assert.match(
    mutate('defaults', (c) => {
      c.toml = c.toml.replace('upload_threads = 12', 'upload_threads = 8');
      (c.document.loft as Record<string, unknown>).upload_threads = 8;
      delete c.config.uploadThreads;
    }).join('\n'),
    /module defaults differ from Loft's/,
  );
  assert.match(
    mutate('defaults', (c) => (c.toml += '\n[loft]\nupload_threads = "many"\n')).join('\n'),
    /not valid TOML|refused/,
  );
  assert.match(
    mutate(
      'defaults',
      (c) => (c.toml = c.toml.replace('upload_threads = 12', 'upload_threads = 0')),
    ).join('\n'),
    /Loft refused the file/,
  );
});

test('check-toml.mjs, as the flake check runs it: exit 0 for the cases, 1 for a broken one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loft-checktoml-'));
  try {
    const good = join(dir, 'cases.json');
    writeFileSync(good, JSON.stringify(cases));
    const script = join(nixTests, 'check-toml.mjs');
    const { stdout } = await exec(process.execPath, [script, good, repoRoot]);
    assert.equal(stdout.match(/^ok /gm)?.length, Object.keys(cases).length);
    const broken = structuredClone(cases);
    broken['pruning-off']!.config['prune.targetPercentage'] = 50;
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify(broken));
    await assert.rejects(
      exec(process.execPath, [script, bad, repoRoot]),
      (e: { code?: number; stdout?: string }) => {
        assert.equal(e.code, 1);
        assert.match(e.stdout ?? '', /FAIL pruning-off: prune\.targetPercentage = 80, expected 50/);
        return true;
      },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- the TOML writer against a real TOML parser ------------------------------------------------

const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
// Nix strings cannot hold NUL; a table with an `outPath` key reads as a derivation (documented).
// Half the strings are from ASCII (controls, quotes, backslashes, dots and spaces turn up
// often), half from all of Unicode.
const ascii = fc.integer({ min: 1, max: 0x7f }).map((n) => String.fromCharCode(n));
const text = fc
  .oneof(fc.string({ unit: ascii, maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 12 }))
  .filter((s) => !s.includes('\0') && !loneSurrogate.test(s));
const key = text.filter((k) => k !== 'outPath' && k !== '__proto__');
const scalar = fc.oneof(
  fc.boolean(),
  fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
  text,
);
const { doc } = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalar,
    fc.array(tie('value'), { maxLength: 4 }),
    tie('table'),
  ),
  table: fc.dictionary(key, tie('value'), { maxKeys: 4 }),
  doc: fc.dictionary(key, tie('value'), { maxKeys: 6 }),
}));

test('toTOML: arbitrary documents (any Unicode keys and strings, arrays, nested and inline tables) parse back equal', async () => {
  const docs = fc.sample(doc, { numRuns: 200, seed: 0x10f7 });
  const dir = mkdtempSync(join(tmpdir(), 'loft-toml-prop-'));
  try {
    const file = join(dir, 'docs.json');
    writeFileSync(file, JSON.stringify(docs));
    const tomls = await nixEval<string[]>({
      expr: `map (import ${lib}).toTOML (builtins.fromJSON (builtins.readFile ${file}))`,
    });
    assert.equal(tomls.length, docs.length);
    for (const [i, t] of tomls.entries()) {
      let parsed: unknown;
      try {
        parsed = plain(parseToml(t));
      } catch (e) {
        assert.fail(
          `document ${i} is not valid TOML (${(e as Error).message}):\n${t}\nfrom ${JSON.stringify(docs[i])}`,
        );
      }
      assert.deepEqual(parsed, plain(docs[i]), `document ${i}:\n${t}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('toTOML: floats come out exact or not at all', async () => {
  // Nix literals, so each is a float in Nix (JSON "100" would be an integer).
  const exact = {
    a: '100.0',
    b: '1.5',
    c: '0.1',
    d: '-2.5',
    e: '1.0e-7',
    f: '3.0e300',
    g: '9007199254740992.0',
    h: '1.0e18',
  };
  const toml = await nixEval<string>({
    expr: `(import ${lib}).toTOML { ${Object.entries(exact)
      .map(([k, v]) => `${k} = ${v};`)
      .join(' ')} }`,
  });
  const parsed = parseToml(toml) as Record<string, number>;
  for (const [k, v] of Object.entries(exact)) {
    assert.equal(parsed[k], Number(v), `${k} = ${v} came out as ${parsed[k]}`);
  }
  assert.match(toml, /^a = 100\.0$/m); // a float stays a float in TOML
  for (const inexact of ['0.123456789', '1234567.891']) {
    let out: string;
    try {
      out = await nixEval<string>({ expr: `(import ${lib}).toTOML { x = ${inexact}; }` });
    } catch {
      const err = await nixEvalError({ expr: `(import ${lib}).toTOML { x = ${inexact}; }` });
      assert.match(
        err,
        /x: a float with more than 6 significant digits .* cannot be written exactly/,
      );
      continue;
    }
    // A Nix whose toJSON keeps every digit may write it, but then exactly.
    assert.equal((parseToml(out) as { x: number }).x, Number(inexact));
  }
});

test('toTOML refuses what TOML cannot hold, naming the key', async () => {
  for (const [expr, message] of [
    [
      '{ loft.key = ./x; }',
      /loft\.key: a Nix path value would be copied into the world-readable Nix store/,
    ],
    ['{ loft.list = [ 1 null ]; }', /loft\.list\.\[1\]: null inside a list/],
    ['{ f = x: x; }', /f: a function cannot be written as TOML/],
  ] as const) {
    assert.match(await nixEvalError({ expr: `(import ${lib}).toTOML ${expr}` }), message);
  }
});

// ---- header names -> environment variables -----------------------------------------------------

test('header names map to LOFT_EXTRA_HEADER_* variables that Loft reads back as the same header', async () => {
  const names = [
    'CF-Access-Client-Id',
    'CF-Access-Client-Secret',
    'x-trace-42',
    'X',
    ...fc.sample(fc.stringMatching(/^[A-Za-z0-9-]{1,24}$/), { numRuns: 100, seed: 7 }),
  ];
  const r = await nixEval<{ env: string[]; ok: boolean[] }>(
    {
      expr: `{ json }: let l = import ${lib}; names = builtins.fromJSON json; in { env = map l.headerEnvName names; ok = map l.isMappableHeaderName names; }`,
    },
    { argstr: { json: JSON.stringify(names) } },
  );
  assert.equal(r.env[0], 'LOFT_EXTRA_HEADER_CF_ACCESS_CLIENT_ID');
  for (const [i, name] of names.entries()) {
    assert.equal(r.ok[i], true, name);
    assert.match(r.env[i]!, /^LOFT_EXTRA_HEADER_[A-Z0-9_]+$/, 'a valid shell variable name');
    assert.equal(headerNameFromEnv(r.env[i]!), name.toLowerCase(), `${name} -> ${r.env[i]}`);
  }
});

test('header names that would not survive the trip are refused (the module asserts it)', async () => {
  const names = [
    'X_Under',
    'X.Dot',
    'Weird!',
    '',
    ...fc.sample(fc.stringMatching(/^[A-Za-z0-9-]{0,8}[_!#$%&'*+.^`|~][A-Za-z0-9-]{0,8}$/), {
      numRuns: 50,
      seed: 11,
    }),
  ];
  const ok = await nixEval<boolean[]>(
    { expr: `{ json }: map (import ${lib}).isMappableHeaderName (builtins.fromJSON json)` },
    { argstr: { json: JSON.stringify(names) } },
  );
  assert.deepEqual(
    ok,
    names.map(() => false),
  );
  // Why: "_" comes back as "-", so X_Under would arrive as x-under.
  assert.equal(headerNameFromEnv('LOFT_EXTRA_HEADER_X_UNDER'), 'x-under');
});
