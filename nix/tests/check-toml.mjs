// Checks the loft.toml files the NixOS module generates (nix/tests/cases.nix, evaluated to
// JSON) against Loft's own config loader: each file is the expected TOML document, parses
// without errors, warns about exactly the keys expected, and reads back the expected values.
//
//   node nix/tests/check-toml.mjs CASES.json LOFT_ROOT
//
// LOFT_ROOT is a directory holding Loft's package.json, dist/src and node_modules: the
// repository after `npm run build`, or lib/node_modules/loft in the Nix package. The flake's
// `nix-lib` check runs this; test/integration/nixos imports `checkCase` from it.
import { readFileSync } from 'node:fs';
import process from 'node:process';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isDeepStrictEqual } from 'node:util';

/** Loft's parseConfig and the TOML parser it uses, from a Loft tree. */
export async function loadLoft(root) {
  const loftRoot = resolve(root);
  const config = await import(pathToFileURL(join(loftRoot, 'dist/src/config/index.js')).href);
  const require = createRequire(join(loftRoot, 'package.json'));
  const toml = await import(pathToFileURL(require.resolve('smol-toml')).href);
  return { parseConfig: config.parseConfig, parseToml: toml.parse };
}

/** Plain JSON data: drops prototypes, turns undefined into null inside objects. */
const plain = (v) => JSON.parse(JSON.stringify(v ?? null, (_k, x) => (x === undefined ? null : x)));

/** LoftConfig with the extra headers as a record (they hide their values otherwise). */
function view(config) {
  return plain({
    ...config,
    s3: { ...config.s3, extraHeaders: config.s3.extraHeaders.toRecord() },
  });
}

function at(obj, path) {
  let v = obj;
  for (const part of path.split('.')) v = v === null || typeof v !== 'object' ? undefined : v[part];
  return v === undefined ? null : v;
}

const show = (v) => JSON.stringify(v);
const SOURCE = '/etc/loft/loft.toml';

/** Every way case `c` fails, as readable lines (empty: it passes). */
export function checkCase(name, c, { parseConfig, parseToml }) {
  const problems = [];
  const fail = (msg) => problems.push(`${name}: ${msg}`);

  let doc;
  try {
    doc = plain(parseToml(c.toml));
  } catch (e) {
    fail(`the generated file is not valid TOML: ${e.message}\n${c.toml}`);
    return problems;
  }
  if (!isDeepStrictEqual(doc, plain(c.document))) {
    fail(`document differs\n  got:      ${show(doc)}\n  expected: ${show(c.document)}`);
  }

  // As loft.service runs it: its start script exports the key's credential copy.
  const env = c.options.signingKeyPath
    ? { LOFT_SIGNING_KEY_PATH: '/run/credentials/loft.service/signing-key' }
    : {};
  let result;
  try {
    result = parseConfig(c.toml, { source: SOURCE, env });
  } catch (e) {
    fail(`Loft refused the file: ${e.message}\n${c.toml}`);
    return problems;
  }
  const warned = result.warnings.map((w) => w.path).sort();
  const expectedWarnings = [...c.warnings].sort();
  if (!isDeepStrictEqual(warned, expectedWarnings)) {
    fail(`warnings ${show(warned)}, expected ${show(expectedWarnings)}`);
  }
  const v = view(result.config);
  for (const [path, expected] of Object.entries(c.config)) {
    const got = at(v, path);
    if (!isDeepStrictEqual(got, plain(expected))) {
      fail(`${path} = ${show(got)}, expected ${show(expected)}`);
    }
  }

  if (c.sameAsLoftDefaults) {
    // The module's defaults are Loft's: its file reads the same as one that sets only what
    // Loft has no default for (the bucket) and the path the sandbox requires.
    const minimal = `[s3]\nbucket = ${show(c.options.s3.bucket)}\n[loft]\nlocal_cache_path = ${show(
      c.document.loft.local_cache_path,
    )}\n`;
    const ours = plain({ ...v, source: null });
    const loftOwn = plain({
      ...view(parseConfig(minimal, { source: SOURCE, env: {} }).config),
      source: null,
    });
    if (!isDeepStrictEqual(ours, loftOwn)) {
      fail(
        `module defaults differ from Loft's\n  module: ${show(ours)}\n  Loft:   ${show(loftOwn)}`,
      );
    }
  }
  return problems;
}

async function main(argv) {
  if (argv.length !== 2) {
    process.stderr.write('usage: node check-toml.mjs CASES.json LOFT_ROOT\n');
    return 2;
  }
  const [casesFile, loftRoot] = argv;
  const cases = JSON.parse(readFileSync(casesFile, 'utf8'));
  const loft = await loadLoft(loftRoot);
  let failed = 0;
  for (const [name, c] of Object.entries(cases)) {
    const problems = checkCase(name, c, loft);
    process.stdout.write(problems.length === 0 ? `ok ${name}\n` : `FAIL ${problems.join('\n')}\n`);
    if (problems.length > 0) failed++;
  }
  if (Object.keys(cases).length === 0) {
    process.stdout.write('FAIL no cases\n');
    return 1;
  }
  return failed === 0 ? 0 : 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = await main(process.argv.slice(2));
}
