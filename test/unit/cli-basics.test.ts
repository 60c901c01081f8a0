import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
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

/** Run `loft --version` with TMPDIR set; what the compile cache's directory then holds. */
async function versionWithTmp(tmp: string): Promise<string[]> {
  await run(process.execPath, [`${repoRoot}/bin/loft.js`, '--version'], {
    env: { ...process.env, TMPDIR: tmp, NODE_COMPILE_CACHE: '' },
  });
  return readdirSync(join(tmp, `loft-compile-cache-${process.getuid!()}`));
}

test('loft keeps its compiled code in TMPDIR/loft-compile-cache-UID, a directory of its own', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'loft-compile-cache-'));
  try {
    const versions = await versionWithTmp(tmp);
    assert.equal(versions.length, 1);
    const dir = join(tmp, `loft-compile-cache-${process.getuid!()}`);
    assert.ok(readdirSync(join(dir, versions[0]!)).length > 0);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('a compile cache directory others may write, or that is not its own, is not used', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'loft-compile-cache-'));
  const dir = join(tmp, `loft-compile-cache-${process.getuid!()}`);
  try {
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    assert.deepEqual(await versionWithTmp(tmp), [], 'group- and world-writable');
    chmodSync(dir, 0o700);
    chownSync(dir, process.getuid!() + 1, process.getgid!());
    assert.deepEqual(await versionWithTmp(tmp), [], 'owned by another user');
    rmSync(dir, { recursive: true });
    const elsewhere = join(tmp, 'elsewhere');
    mkdirSync(elsewhere, { mode: 0o700 });
    symlinkSync(elsewhere, dir);
    assert.deepEqual(await versionWithTmp(tmp), [], 'a symlink');
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
