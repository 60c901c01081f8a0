import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
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
