/**
 * `npm test`: runs every test file under node:test. Integration tests need a real
 * nix-daemon and a real S3 server, so this harness starts them first (on loopback), hands
 * their coordinates to the tests through the environment, and stops them by PID at the end,
 * whatever happened in between.
 *
 *   node dist/test/harness/run.js            all tests
 *   node dist/test/harness/run.js --unit     unit tests only (no fixtures)
 *   node dist/test/harness/run.js nar s3     only files whose path contains "nar" or "s3"
 */
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFixtures, type Fixtures } from '../support/fixtures.js';

const distTest = fileURLToPath(new URL('..', import.meta.url));

function findTests(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const unitOnly = args.includes('--unit');
  const filters = args.filter((a) => !a.startsWith('--'));
  let files = findTests(join(distTest, 'unit'));
  if (!unitOnly) files.push(...findTests(join(distTest, 'integration')));
  if (filters.length > 0) {
    files = files.filter((f) => filters.some((flt) => relative(distTest, f).includes(flt)));
  }
  if (files.length === 0) {
    console.error('no test files matched');
    return 1;
  }
  const needsFixtures = files.some((f) => relative(distTest, f).startsWith('integration'));

  let fixtures: Fixtures | undefined;
  const stop = async () => {
    const f = fixtures;
    fixtures = undefined;
    await f?.stop();
  };
  // Stop the servers even when the run is interrupted.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      void stop().finally(() => process.exit(130));
    });
  }
  try {
    if (needsFixtures) fixtures = await startFixtures();
    const concurrency = process.env.LOFT_TEST_CONCURRENCY ?? '2';
    const child = spawn(
      process.execPath,
      [
        '--enable-source-maps',
        '--test',
        `--test-concurrency=${concurrency}`,
        // A test whose fixture failed can leave a child process holding its file open; fail
        // it instead of letting CI hang (the slowest test takes about 20 s here).
        `--test-timeout=${process.env.LOFT_TEST_TIMEOUT_MS ?? '300000'}`,
        '--test-reporter=spec',
        ...files,
      ],
      {
        stdio: 'inherit',
        env: { ...process.env, ...(fixtures?.env ?? {}) },
      },
    );
    return await new Promise<number>((resolve) => {
      child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
  } finally {
    await stop();
  }
}

process.exitCode = await main();
