/** `--prune` and `--prune --dry-run` as the CLI runs them, against RGW. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nixBuild } from '../../support/nix.js';
import { checkCacheIntegrity, makePublicCache } from '../../support/cache.js';
import { storeOptions } from '../../support/s3.js';
import { openPushContext } from '../../support/push.js';
import { push } from '../../../src/upload/push.js';
import { createS3Store } from '../../../src/storage/index.js';
import { runPrune } from '../../../src/cli/commands/prune.js';
import { EXIT } from '../../../src/cli/exit-codes.js';
import { MemoryLogger } from '../../../src/util/log.js';
import { inventory } from './support.js';
import { PRUNE_MARK_KEY } from '../../../src/storage/prune-mark.js';

test('--prune --dry-run prints the plan and deletes nothing; --prune deletes and forgets', async () => {
  const cache = await makePublicCache('prune-cli');
  const [top] = await nixBuild(`
    let dep = mk "cli-dep" "echo dep > $out";
    in mk "cli-top" "echo \${dep} > $out"`);
  const pctx = await openPushContext({ bucket: cache.bucket, key: cache.key });
  try {
    const r = await push(pctx, [top!], { uploadThreads: 2, skipSignedByKeys: [] });
    assert.equal(r.complete, true);
  } finally {
    await pctx.close();
  }
  const before = await inventory(cache.client, cache.bucket);
  const blobs = createS3Store(storeOptions(cache.bucket));
  const forgotten: string[] = [];
  const ctx = {
    blobs,
    logger: new MemoryLogger(),
    config: { prune: { retentionDays: 7, maxSizeBytes: undefined, targetPercentage: 80 } },
  };
  const io = (out: string[]) => ({
    out: { write: (s: string) => out.push(s) },
    index: {
      forgetPresent(hps: Iterable<string>) {
        const list = [...hps];
        forgotten.push(...list);
        return list.length;
      },
    },
    now: new Date(Date.now() + 8 * 86_400_000),
  });
  try {
    const dryOut: string[] = [];
    assert.equal(await runPrune(ctx, { dryRun: true }, io(dryOut)), EXIT.ok);
    assert.match(dryOut.join(''), /delete 2 expired narinfos/);
    assert.match(dryOut.join(''), /dry run: nothing was deleted/);
    assert.deepEqual((await inventory(cache.client, cache.bucket)).keys, before.keys);
    assert.deepEqual(forgotten, []);

    // A signal before the narinfos are read: interrupted, no plan, nothing deleted.
    const early = new AbortController();
    early.abort();
    const outEarly: string[] = [];
    assert.equal(
      await runPrune(ctx, { dryRun: false }, { ...io(outEarly), drain: early.signal }),
      EXIT.interrupted,
    );
    assert.match(outEarly.join(''), /stopped before it had a plan; nothing was deleted/);
    assert.deepEqual((await inventory(cache.client, cache.bucket)).keys, before.keys);

    const out: string[] = [];
    assert.equal(await runPrune(ctx, { dryRun: false }, io(out)), EXIT.ok);
    assert.match(out.join(''), /deleted 2 narinfos .* 2 NARs/);
    assert.equal(forgotten.length, 2);
    // And the prune mark, which every prune that deletes rewrites (never deleted).
    assert.deepEqual(
      [...(await inventory(cache.client, cache.bucket)).keys].sort(),
      [PRUNE_MARK_KEY, 'nix-cache-info'].sort(),
    );
    assert.deepEqual((await checkCacheIntegrity(cache.client, cache.bucket)).problems, []);

    // A signal once the plan is made (nothing left to read): stops before deleting.
    const stop = new AbortController();
    stop.abort();
    const out2: string[] = [];
    const code = await runPrune(ctx, { dryRun: false }, { ...io(out2), drain: stop.signal });
    assert.equal(code, EXIT.interrupted);
    assert.match(out2.join(''), /stopped early/);
  } finally {
    await blobs.close();
  }
});
