#!/usr/bin/env node
// Rewrites README.md's configuration reference (between the config-reference markers) from
// the schema in src/config/schema.ts. Run after `npm run build`:
//   node scripts/gen-config-reference.mjs          write README.md
//   node scripts/gen-config-reference.mjs --check  exit 1 if README.md is out of date
import { readFileSync, writeFileSync } from 'node:fs';
import process from 'node:process';
import { URL } from 'node:url';

const say = (line) => process.stdout.write(`${line}\n`);
const complain = (line) => process.stderr.write(`${line}\n`);

const root = new URL('../', import.meta.url);
const readmeUrl = new URL('README.md', root);
let mod;
try {
  mod = await import(new URL('dist/src/config/reference.js', root).href);
} catch (e) {
  complain(`cannot load the built schema (${e.message}); run \`npm run build\` first`);
  process.exit(2);
}

const readme = readFileSync(readmeUrl, 'utf8');
const updated = mod.spliceReference(readme, mod.renderConfigReference());
if (process.argv.includes('--check')) {
  if (updated !== readme) {
    complain(`README.md's configuration reference is out of date; run: ${mod.REGENERATE_COMMAND}`);
    process.exit(1);
  }
  say('README.md configuration reference is up to date');
} else if (updated !== readme) {
  writeFileSync(readmeUrl, updated);
  say('README.md configuration reference updated');
} else {
  say('README.md configuration reference already up to date');
}
