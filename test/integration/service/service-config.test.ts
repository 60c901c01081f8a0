/**
 * Bad configurations, each with a clear error and the documented exit code: 3 for the
 * config file, its values and the signing key; 4 when S3 or the daemon cannot be reached.
 * Unknown keys only warn (the NixOS module's extraConfig may pass newer keys).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makePublicCache } from '../../support/cache.js';
import { s3TestEnv } from '../../support/s3.js';
import { runLoft, setupService } from './support.js';

test('bad config variants: clear errors and the right exit codes', async () => {
  const cache = await makePublicCache('svc-config');
  const s3 = s3TestEnv();
  const dir = mkdtempSync(join(tmpdir(), 'loft-badcfg-'));
  const base = setupService(cache, undefined);
  const env = base.env;
  const write = (name: string, text: string) => {
    const f = join(dir, name);
    writeFileSync(f, text);
    return f;
  };
  const good = (loft: string) =>
    `[s3]\nbucket = "${cache.bucket}"\nendpoint = "${s3.endpoint}"\n[loft]\nlocal_cache_path = "${join(dir, 'state.db')}"\n${loft}\n`;
  try {
    const cases: { name: string; args: string[]; code: number; stderr: RegExp }[] = [
      {
        name: 'config file missing',
        args: ['-c', join(dir, 'nope.toml')],
        code: 3,
        stderr: /nope\.toml/,
      },
      {
        name: 'TOML syntax error',
        args: ['-c', write('syntax.toml', '[s3]\nbucket = "x\n')],
        code: 3,
        stderr: /syntax\.toml:2:/,
      },
      {
        name: 'bad key value',
        args: ['-c', write('value.toml', good('upload_threads = 0'))],
        code: 3,
        stderr: /upload_threads.*1 to 256/s,
      },
      {
        name: 'unreadable signing key',
        args: ['-c', write('key.toml', good(`signing_key_path = "${join(dir, 'missing.key')}"`))],
        code: 3,
        stderr: /missing\.key/,
      },
      {
        name: 'unreachable endpoint',
        args: [
          '-c',
          write(
            'endpoint.toml',
            `[s3]\nbucket = "${cache.bucket}"\nendpoint = "http://127.0.0.1:1"\nmax_attempts = 1\n[loft]\nlocal_cache_path = "${join(dir, 'state.db')}"\n`,
          ),
        ],
        code: 4,
        stderr: /127\.0\.0\.1:1/,
      },
      {
        name: 'store directory to watch missing',
        args: ['-c', write('storedir.toml', good(`real_store_dir = "${join(dir, 'no-store')}"`))],
        code: 3,
        stderr: /no-store.*real_store_dir/s,
      },
    ];
    for (const c of cases) {
      const r = await runLoft(c.args, env);
      assert.equal(r.code, c.code, `${c.name}: exit ${r.code}\n${r.stderr}`);
      assert.match(r.stderr, c.stderr, `${c.name}: ${r.stderr}`);
      assert.ok(!r.stderr.includes(s3.secretAccessKey), `${c.name}: no secret in the output`);
    }

    // Unknown keys warn and name themselves; the command still runs.
    const r = await runLoft(
      ['-c', write('unknown.toml', good('some_new_feature_flag = true')), '--status'],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /some_new_feature_flag.*unknown key/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(base.dir, { recursive: true, force: true });
  }
});
