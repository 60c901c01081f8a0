#!/usr/bin/env node
// Thin launcher: the CLI lives in dist/ after `npm run build`.
import { lstatSync, mkdirSync, statSync } from 'node:fs';
import { enableCompileCache } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Before anything that needs a newer Node (zstd in node:zlib came in 22.15): say so plainly.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 15)) {
  process.stderr.write(
    `loft: Node.js ${process.versions.node} is too old; Loft needs Node.js 22.15 or later (24 recommended).\n` +
      '  In the repository, scripts/setup.sh installs Node 24 and `npx loft` then uses it.\n',
  );
  process.exit(4);
}

// V8's code for Loft's modules, kept on disk (in the temporary directory) between runs: a
// short command otherwise spends much of its start compiling them. Failing to keep it is
// silent and costs only that. Code loaded from there runs as this user, so the directory
// must be this user's own, a real directory no one else may write (anyone may make a name
// in /tmp first). It is made here, one level: Node's recursive mkdir, which
// enableCompileCache would use, spins forever where a parent exists but cannot hold
// children (under /proc, say). NODE_COMPILE_CACHE, when set, was taken up by Node itself.
if (!process.env.NODE_COMPILE_CACHE && typeof process.getuid === 'function') {
  const uid = process.getuid();
  const dir = join(tmpdir(), `loft-compile-cache-${uid}`);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch {
    // Already there (checked below), or not to be made: no cache this time.
  }
  const st = lstatSync(dir, { throwIfNoEntry: false });
  if (st?.isDirectory() && st.uid === uid && (st.mode & 0o022) === 0) enableCompileCache(dir);
}

// The bundle (dist/bundle/, from `npm run build`) loads far fewer files than dist/src/, which
// tsc alone builds. A bundle older than the last tsc build is stale: dist/src/ is then newer.
const bundle = new URL('../dist/bundle/main.js', import.meta.url);
const compiled = new URL('../dist/src/cli/main.js', import.meta.url);
const tscStamp = new URL('../dist/.tsbuildinfo', import.meta.url);
const mtime = (url) => statSync(url, { throwIfNoEntry: false })?.mtimeMs;
const bundled = mtime(bundle);
const main = bundled !== undefined && !(mtime(tscStamp) > bundled) ? bundle : compiled;
if (main === compiled && mtime(compiled) === undefined) {
  process.stderr.write('loft: not built yet; run `npm run build` in the repository first\n');
  process.exit(70);
}
await import(main.href);
