/**
 * A prune killed with SIGKILL in the middle of deleting a large plan leaves a
 * closure-complete cache, and the next prune finishes the job. The cache is a synthetic
 * graph of 600 narinfos (written with the raw SDK client) so the plan has many batches.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { checkCacheIntegrity } from '../../support/cache.js';
import { createBucket, storeOptions, testS3Client } from '../../support/s3.js';
import { createS3Store } from '../../../src/storage/index.js';
import { prune } from '../../../src/prune/prune.js';
import { DAY_MS, policyFromSettings } from '../../../src/prune/policy.js';
import { MemoryLogger } from '../../../src/util/log.js';
import { inventory, writeSyntheticCache } from './support.js';
import { PRUNE_MARK_KEY } from '../../../src/storage/prune-mark.js';

const child = fileURLToPath(new URL('./prune-child.js', import.meta.url));
const N = 600;

test('a prune killed with SIGKILL mid-deletion leaves a valid cache; the next run ends clean', async () => {
  const client = testS3Client();
  const bucket = await createBucket(client, 'prune-kill');
  await client.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: 'nix-cache-info',
      Body: 'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n',
    }),
  );
  await writeSyntheticCache(client, bucket, N);
  const now = Date.now() + 10 * DAY_MS; // all expired

  // Kill the child once it reports a few hundred narinfos deleted.
  const proc = spawn(process.execPath, [child, bucket, String(now), '3'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  let killedAt: number | undefined;
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal })),
  );
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (chunk: string) => {
    out += chunk;
    const m = [...out.matchAll(/deleted (\d+)\/\d+ narinfos/g)].pop();
    if (killedAt === undefined && m && Number(m[1]) >= 200) {
      killedAt = Number(m[1]);
      proc.kill('SIGKILL');
    }
  });
  const { signal } = await exit;
  assert.equal(signal, 'SIGKILL', `killed mid-way (child output:\n${out.slice(-2000)})`);

  const mid = await inventory(client, bucket);
  assert.ok(
    mid.narInfos.length > 0 && mid.narInfos.length <= N - killedAt!,
    `some narinfos deleted, some left (${mid.narInfos.length})`,
  );
  assert.equal(mid.nars.length, N, 'no NAR was deleted before the narinfo phase ended');
  const report = await checkCacheIntegrity(client, bucket);
  assert.deepEqual(report.problems, [], 'closure-complete after the kill');

  // The next prune finishes: only nix-cache-info is left.
  const blobs = createS3Store(storeOptions(bucket));
  try {
    const r = await prune(
      {
        blobs,
        logger: new MemoryLogger(),
        policy: policyFromSettings({
          retentionDays: 1,
          maxSizeBytes: undefined,
          targetPercentage: 80,
        }),
      },
      { now: new Date(now) },
    );
    assert.equal(r.deleted.narInfos.count, mid.narInfos.length);
    // NARs whose narinfos the killed run deleted are orphans now, old enough to go.
    assert.equal(r.deleted.orphanNars.count + r.deleted.releasedNars.count, N);
  } finally {
    await blobs.close();
  }
  const end = await inventory(client, bucket);
  // The killed prune could not delete its intent: it stays until it expires (5 minutes).
  // The prune mark was rewritten before the first delete, and stays.
  assert.ok(end.keys.has(PRUNE_MARK_KEY));
  const [cacheKeys, intents] = [...end.keys]
    .filter((k) => k !== PRUNE_MARK_KEY)
    .reduce<[string[], string[]]>(
      ([c, i], k) => (k.startsWith('loft/prune-intents/') ? [c, [...i, k]] : [[...c, k], i]),
      [[], []],
    );
  assert.deepEqual(cacheKeys, ['nix-cache-info']);
  assert.equal(intents.length, 1, 'the killed prune left its intent');
});
