import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../support/fixtures.js';

const run = promisify(execFile);
const pkg = JSON.parse(readFileSync(`${repoRoot}/package.json`, 'utf8')) as { version: string };

test('npx loft --version prints the package version and the Node.js the tests run on', async () => {
  const { stdout } = await run('npx', ['--no-install', 'loft', '--version'], { cwd: repoRoot });
  assert.equal(stdout, `loft ${pkg.version} (node ${process.versions.node})\n`);
});

test('npx loft --help prints usage', async () => {
  const { stdout } = await run('npx', ['--no-install', 'loft', '--help'], { cwd: repoRoot });
  assert.match(stdout, /^Usage: loft \[OPTIONS\]$/m);
});

test('an unknown flag is a usage error with exit code 2', async () => {
  await assert.rejects(
    run(process.execPath, [`${repoRoot}/bin/loft.js`, '--nope']),
    (e: { code: number; stderr: string }) => {
      assert.equal(e.code, 2);
      assert.match(e.stderr, /--nope/);
      return true;
    },
  );
});

test('loft keeps its compiled code in TMPDIR/node-compile-cache', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'loft-compile-cache-'));
  try {
    await run(process.execPath, [`${repoRoot}/bin/loft.js`, '--version'], {
      env: { ...process.env, TMPDIR: tmp, NODE_COMPILE_CACHE: '' },
    });
    const versions = readdirSync(join(tmp, 'node-compile-cache'));
    assert.equal(versions.length, 1);
    assert.ok(readdirSync(join(tmp, 'node-compile-cache', versions[0]!)).length > 0);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('a TMPDIR that cannot hold the compile cache (under /proc, a dangling symlink) costs nothing: --version still answers at once', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'loft-compile-cache-'));
  symlinkSync(join(tmp, 'missing'), join(tmp, 'dangling'));
  try {
    for (const dir of ['/proc', '/proc/nonexistent', join(tmp, 'dangling')]) {
      const { stdout, stderr } = await run(
        process.execPath,
        [`${repoRoot}/bin/loft.js`, '--version'],
        // Node's own recursive mkdir spins forever under /proc: a hang fails here.
        { env: { ...process.env, TMPDIR: dir, NODE_COMPILE_CACHE: '' }, timeout: 20_000 },
      );
      assert.equal(stdout, `loft ${pkg.version} (node ${process.versions.node})\n`, dir);
      assert.equal(stderr, '', dir);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
