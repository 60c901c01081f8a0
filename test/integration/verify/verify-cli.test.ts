/**
 * `loft --verify` through the real binary and config, against RGW and a chroot store of
 * the real nix-daemon: exit 0 on a sound cache whose references an upstream cache serves
 * (the daemon says who signed them), 1 once a NAR is deleted, and `--verify --repair`
 * puts it back and exits 0.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { nixBuild, runNix } from '../../support/nix.js';
import { makePublicCache } from '../../support/cache.js';
import { listKeysRaw } from '../../support/s3.js';
import { hashPartOf, runLoft, setupService, startChrootStore } from '../service/support.js';

test('loft --verify exits 0 on a sound cache with upstream references, 1 when damaged; --repair fixes it', async () => {
  const cache = await makePublicCache('verify-cli');
  const store = await startChrootStore();
  const keys = mkdtempSync(join(tmpdir(), 'loft-upstream-'));
  const setup = setupService(cache, store, { skip_signed_by_keys: '["upstream-test-1"]' });
  try {
    const [up, top] = await nixBuild(`
      let up = mk "vc-upstream" "echo up > $out";
      in [ up (mk "vc-top" "echo \${up} > $out") ]`);
    await store.add([top!]);
    await runNix('nix-store', [
      '--generate-binary-cache-key',
      'upstream-test-1',
      `${keys}/sk`,
      `${keys}/pk`,
    ]);
    await runNix('nix', ['store', 'sign', '--store', store.root, '--key-file', `${keys}/sk`, up!]);
    const c = ['-c', setup.toml];
    const push = await runLoft([...c, '--upload-path', top!], setup.env);
    assert.equal(push.code, 0, push.stderr);
    assert.match(push.stdout, /1 left to upstream/);

    const clean = await runLoft([...c, '--verify'], setup.env);
    assert.equal(clean.code, 0, clean.stdout + clean.stderr);
    assert.match(clean.stdout, /no problems found/);
    assert.match(clean.stdout, /1 references left to an upstream cache \(skip_signed_by_keys\)/);
    assert.match(
      clean.stdout,
      new RegExp(
        `upstream-reference ${hashPartOf(top!)}\\.narinfo: reference ${up} is signed by upstream-test-1`,
      ),
    );

    const narinfo = await (
      await cache.client.send(
        new GetObjectCommand({ Bucket: cache.bucket, Key: `${hashPartOf(top!)}.narinfo` }),
      )
    ).Body!.transformToString();
    const nar = /^URL: (.+)$/m.exec(narinfo)![1]!;
    await cache.client.send(new DeleteObjectCommand({ Bucket: cache.bucket, Key: nar }));
    const damaged = await runLoft([...c, '--verify', '--deep'], setup.env);
    assert.equal(damaged.code, 1, damaged.stdout + damaged.stderr);
    assert.match(damaged.stdout, /1 problems:\n {2}1 NARs missing/);
    assert.match(
      damaged.stdout,
      new RegExp(`missing-nar ${hashPartOf(top!)}\\.narinfo: NAR ${nar} does not exist`),
    );

    const repaired = await runLoft([...c, '--verify', '--repair'], setup.env);
    assert.equal(repaired.code, 0, repaired.stdout + repaired.stderr);
    assert.match(repaired.stdout, new RegExp(`repaired ${top}`));
    assert.ok((await listKeysRaw(cache.client, cache.bucket)).includes(nar));
  } finally {
    await store.stop();
    rmSync(keys, { recursive: true, force: true });
    rmSync(setup.dir, { recursive: true, force: true });
  }
});
