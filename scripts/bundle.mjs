#!/usr/bin/env node
// Bundles the CLI that tsc compiled into dist/src/ into dist/bundle/, which bin/loft.js runs:
// start-up then loads a few files instead of one module per source file. Run by
// `npm run build` after tsc.
//
// - Code splitting keeps every dynamic import() a chunk of its own, loaded only by the
//   commands that need it.
// - The worker threads are entry points under their own names: zstd-pool and pack-pool start
//   them with new URL('./zstd-worker.js', import.meta.url), and in the bundle import.meta.url
//   is the URL of whichever chunk holds the pool, so every output file sits in one folder.
// - External: better-sqlite3 (a native addon found next to its package) and the AWS SDK
//   (loaded only for the credential chain; a large tree that gains nothing from bundling).
// - Source maps chain through tsc's maps to src/ (seen with node --enable-source-maps).
import { build } from 'esbuild';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
import { fileURLToPath, URL } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const from = join(root, 'dist', 'src');
const outdir = join(root, 'dist', 'bundle');

const entryPoints = {
  main: join(from, 'cli', 'main.js'),
  'zstd-worker': join(from, 'compress', 'zstd-worker.js'),
  'pack-worker': join(from, 'pack', 'pack-worker.js'),
};
for (const file of Object.values(entryPoints)) {
  if (!existsSync(file)) {
    process.stderr.write(`bundle: ${file} is missing; run tsc first (npm run build does)\n`);
    process.exit(2);
  }
}

// Chunks of an earlier build must not linger next to the new ones.
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints,
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22.15',
  // Flat: a chunk's import.meta.url resolves './zstd-worker.js' next to itself.
  chunkNames: 'chunk-[hash]',
  external: ['better-sqlite3', '@aws-sdk/*', '@smithy/*'],
  sourcemap: 'linked',
  sourcesContent: false,
  logLevel: 'warning',
});

// Every file a chunk starts by a URL relative to itself must be there, and each worker entry
// must be started that way (else the pattern below no longer sees how workers start).
const byUrl = /new URL\(\s*["'](\.\/[^"']+)["']\s*,\s*import\.meta\.url\s*\)/g;
const problems = [];
const referenced = new Set();
for (const name of readdirSync(outdir)) {
  if (!name.endsWith('.js')) continue;
  for (const [, ref] of readFileSync(join(outdir, name), 'utf8').matchAll(byUrl)) {
    referenced.add(ref);
    if (!existsSync(join(outdir, ref))) problems.push(`${name} loads ${ref}, which is missing`);
  }
}
for (const worker of Object.keys(entryPoints).filter((n) => n !== 'main')) {
  if (!referenced.has(`./${worker}.js`)) problems.push(`no chunk starts ./${worker}.js by URL`);
}
if (problems.length > 0) {
  process.stderr.write(`bundle: ${problems.join('; ')}\n`);
  process.exit(1);
}
