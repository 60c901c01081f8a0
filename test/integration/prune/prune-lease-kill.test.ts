/**
 * A pusher killed with SIGKILL cannot delete its lease: the lease protects what it names
 * until it expires (its ttl after its last write, by server time), and then stops
 * protecting anything. Real push in a child process, real RGW.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nixBuild } from '../../support/nix.js';
import { makePublicCache } from '../../support/cache.js';
import { listKeysRaw, storeOptions } from '../../support/s3.js';
import { createS3Store } from '../../../src/storage/index.js';
import { prune } from '../../../src/prune/prune.js';
import { MemoryLogger } from '../../../src/util/log.js';
import {
  checkDeepIntegrity,
  hashPartOfPath,
  inventory,
  pushRoots,
  sleepMs,
  tinyCapPolicy,
} from './support.js';

const child = fileURLToPath(new URL('./lease-child.js', import.meta.url));
const TTL_MS = 4000;

test('a pusher killed with SIGKILL leaves a lease that protects its paths until it expires, then nothing', async () => {
  const cache = await makePublicCache('lease-kill');
  const [dep, top] = await nixBuild(`
    let dep = mk "kill-dep" "echo dep > $out";
    in [ dep (mk "kill-top" "echo \${dep} > $out") ]`);
  assert.equal((await pushRoots(cache, [dep!])).complete, true);

  const proc = spawn(process.execPath, [child, cache.bucket, String(TTL_MS), top!], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<NodeJS.Signals | null>((r) => proc.on('exit', (_c, s) => r(s)));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (d: string) => {
      out += d;
      if (out.includes('leased\n')) resolve();
    });
    proc.on('exit', () => reject(new Error(`child exited before leasing: ${out}`)));
  });
  proc.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');
  const leases = await listKeysRaw(cache.client, cache.bucket, 'loft/leases/');
  assert.equal(leases.length, 1, 'the killed push could not delete its lease');

  const policy = tinyCapPolicy();
  const blobs = createS3Store(storeOptions(cache.bucket));
  try {
    // At once: the lease is live, so the path it names is spared although over the cap.
    const r1 = await prune({ blobs, logger: new MemoryLogger(), policy });
    assert.equal(r1.protections?.leases.length, 1);
    assert.equal(r1.plan!.kept.protectedBy.leased, 1);
    assert.equal(r1.deleted.narInfos.count, 0);
    const depKey = `${hashPartOfPath(dep!)}.narinfo`;
    assert.ok((await inventory(cache.client, cache.bucket)).keys.has(depKey));

    // Past its ttl (and LastModified's one-second slack): expired, it protects nothing.
    await sleepMs(TTL_MS + 2500);
    const r2 = await prune({ blobs, logger: new MemoryLogger(), policy });
    assert.equal(r2.protections?.leases.length, 0);
    assert.equal(r2.protections?.expiredLeases.length, 1);
    assert.equal(r2.deleted.narInfos.count, 1);
    assert.ok(!(await inventory(cache.client, cache.bucket)).keys.has(depKey));
  } finally {
    await blobs.close();
  }
  const walk = await checkDeepIntegrity(cache.client, cache.bucket);
  assert.deepEqual(walk.problems, []);
});
