#!/usr/bin/env node
// Rewrites README.md's table of error codes (between the error-codes markers) from the
// registry in src/util/error-codes.ts. Run after `npm run build`:
//   node scripts/gen-error-reference.mjs          write README.md
//   node scripts/gen-error-reference.mjs --check  exit 1 if README.md is out of date
import { readFileSync, writeFileSync } from 'node:fs';
import process from 'node:process';
import { URL } from 'node:url';

const root = new URL('../', import.meta.url);
const readmeUrl = new URL('README.md', root);
let mod;
try {
  mod = await import(new URL('dist/src/util/error-reference.js', root).href);
} catch (e) {
  process.stderr.write(
    `cannot load the built registry (${e.message}); run \`npm run build\` first\n`,
  );
  process.exit(2);
}
const readme = readFileSync(readmeUrl, 'utf8');
const updated = mod.spliceErrorReference(readme, mod.renderErrorReference());
if (process.argv.includes('--check')) {
  if (updated !== readme) {
    process.stderr.write(
      `README.md's error codes are out of date; run: ${mod.ERRORS_REGENERATE}\n`,
    );
    process.exit(1);
  }
  process.stdout.write('README.md error codes are up to date\n');
} else if (updated !== readme) {
  writeFileSync(readmeUrl, updated);
  process.stdout.write('README.md error codes updated\n');
} else {
  process.stdout.write('README.md error codes already up to date\n');
}
