#!/usr/bin/env node
// Thin launcher: the CLI lives in dist/ after `npm run build`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('loft: not built yet; run `npm run build` in the repository first\n');
  process.exit(70);
}
await import(main.href);
