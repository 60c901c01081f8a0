/**
 * `--verify`, `--verify --deep` and `--verify --repair` on a bucket damaged on purpose,
 * against RGW and the real nix-daemon; the damage is done, and the result checked, with a
 * plain S3 client, and the final proof is real Nix substituting from the repaired bucket
 * with require-sigs on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand, DeleteObjectCommand } from '@aws-sdk/client-s3';
import { nixBuild } from '../../support/nix.js';
import { checkCacheIntegrity, makePublicCache, substituteFresh } from '../../support/cache.js';
import { listKeysRaw, storeOptions } from '../../support/s3.js';
import { openPushContext } from '../../support/push.js';
import { push } from '../../../src/upload/push.js';
import { createS3Store } from '../../../src/storage/index.js';
import { formatNarInfo, parseNarInfo } from '../../../src/nix/narinfo.js';
import { generateKeyPair, signNarInfo } from '../../../src/nix/signing.js';
import { runVerify } from '../../../src/cli/commands/verify.js';
import { verifyCache } from '../../../src/verify/verify.js';
import { parsePublicKey } from '../../../src/nix/signing.js';
import { EXIT } from '../../../src/cli/exit-codes.js';
import { MemoryLogger } from '../../../src/util/log.js';
import type { LocalStore } from '../../../src/store/local-store.js';

const hp = (p: string) => p.slice('/nix/store/'.length, '/nix/store/'.length + 32);

test('--verify finds each kind of damage, --deep finds the truncation by hash, --repair fixes all and deletes nothing', async () => {
  const cache = await makePublicCache('verify');
  const { client, bucket } = cache;
  const paths = await nixBuild(`
    let
      gone = mk "v-gone" "echo gone > $out";
      cut = mk "v-cut" "head -c 200000 /dev/urandom > $out";
      resigned = mk "v-resigned" "echo resigned > $out";
      dropped = mk "v-dropped" "echo dropped > $out";
      garbled = mk "v-garbled" "echo garbled > $out";
    in [ gone cut resigned dropped garbled
         (mk "v-top" "echo \${gone} \${cut} \${resigned} \${dropped} \${garbled} > $out") ]`);
  const [gone, cut, resigned, dropped, garbled, top] = paths as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const pctx = await openPushContext({ bucket, key: cache.key });
  const blobs = createS3Store(storeOptions(bucket));
  try {
    const pushed = await push(pctx, [top], { uploadThreads: 2, skipSignedByKeys: [] });
    assert.equal(pushed.complete, true);
    const ctx = {
      blobs,
      logger: new MemoryLogger(),
      config: {
        signingKeyPath: undefined,
        signingKeyName: undefined,
        trustedPublicKeys: [cache.publicKey],
      },
    };
    const trustedKeys = [parsePublicKey(cache.publicKey, 'test')];

    // A clean cache verifies clean.
    const cleanOut: string[] = [];
    assert.equal(
      await runVerify(
        ctx,
        { deep: true, repair: false },
        { out: { write: (s) => cleanOut.push(s) } },
      ),
      EXIT.ok,
    );
    assert.match(cleanOut.join(''), /6 narinfos, 6 NARs.*read back 6 NARs/);
    assert.match(cleanOut.join(''), /no problems found/);

    // The damage, done with a plain S3 client.
    const text = async (key: string) =>
      (
        await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
      ).Body!.transformToString();
    const bytes = async (key: string) =>
      Buffer.from(
        await (
          await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
        ).Body!.transformToByteArray(),
      );
    const put = (key: string, body: string | Buffer) =>
      client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    const del = (key: string) => client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    const info = async (p: string) => parseNarInfo(await text(`${hp(p)}.narinfo`));

    const goneNar = (await info(gone)).url;
    await del(goneNar);
    const cutInfo = await info(cut);
    const cutBytes = await bytes(cutInfo.url);
    await put(cutInfo.url, cutBytes.subarray(0, Math.floor(cutBytes.length / 2)));
    const other = generateKeyPair('intruder-1');
    await put(
      `${hp(resigned)}.narinfo`,
      formatNarInfo(signNarInfo({ ...(await info(resigned)), sigs: [] }, other.secretKey)),
    );
    await del(`${hp(dropped)}.narinfo`);
    await put(`${hp(garbled)}.narinfo`, 'this is not a narinfo\n');
    await put('notes/readme.txt', 'not a cache object\n');
    const damagedKeys = new Set(await listKeysRaw(client, bucket));

    const shallow = await verifyCache(
      { blobs, logger: ctx.logger, trustedKeys, storeDir: '/nix/store' },
      { deep: false },
    );
    const found = (kind: string, key: string) =>
      shallow.findings.some((f) => f.kind === kind && f.key === key);
    assert.ok(found('missing-nar', `${hp(gone)}.narinfo`), 'deleted NAR');
    assert.ok(found('nar-size', `${hp(cut)}.narinfo`), 'truncated NAR by size');
    assert.ok(found('untrusted-signature', `${hp(resigned)}.narinfo`), 're-signed narinfo');
    assert.ok(found('missing-reference', `${hp(top)}.narinfo`), 'reference without narinfo');
    assert.ok(found('unparsable-narinfo', `${hp(garbled)}.narinfo`), 'unparsable narinfo');
    assert.ok(found('foreign-object', 'notes/readme.txt'), 'foreign object');
    assert.ok(
      shallow.findings.some((f) => f.kind === 'missing-reference' && f.detail.includes(dropped)),
      'the dropped path is named',
    );
    // The NARs of the dropped and the garbled narinfo are named by no narinfo now: notices.
    const orphans = shallow.findings.filter((f) => f.kind === 'orphan-nar').map((f) => f.key);
    assert.equal(orphans.length, 2);
    assert.equal(shallow.findings.length, 8, JSON.stringify(shallow.findings, null, 1));

    const deep = await verifyCache(
      { blobs, logger: ctx.logger, trustedKeys, storeDir: '/nix/store' },
      { deep: true },
    );
    assert.ok(
      deep.findings.some((f) => f.kind === 'file-hash' && f.key === `${hp(cut)}.narinfo`),
      'truncated NAR by FileHash',
    );
    assert.ok(
      deep.findings.some((f) => f.kind === 'unreadable-nar' && f.key === `${hp(cut)}.narinfo`),
    );

    const out: string[] = [];
    assert.equal(
      await runVerify(ctx, { deep: false, repair: false }, { out: { write: (s) => out.push(s) } }),
      EXIT.failed,
    );
    assert.match(out.join(''), /5 problems:/);
    assert.match(out.join(''), /3 notices/);
    assert.match(
      out.join(''),
      new RegExp(`missing-nar ${hp(gone)}\\.narinfo: NAR ${goneNar} does not exist`),
    );

    // Repair through the push pipeline; then the report is of the repaired bucket.
    const repairOut: string[] = [];
    const code = await runVerify(
      {
        ...ctx,
        storeDir: '/nix/store',
        repair: {
          ctx: { ...pctx, store: pctx.store as LocalStore },
          options: { uploadThreads: 2, skipSignedByKeys: [] },
        },
      },
      { deep: true, repair: true },
      { out: { write: (s) => repairOut.push(s) } },
    );
    const report = repairOut.join('');
    assert.equal(code, EXIT.ok, report);
    assert.match(report, /repair: re-uploaded 5 damaged or missing paths/);
    assert.match(report, /verifying again after the repair:\n.*\nno problems found/);
    assert.match(report, /1 objects that are not part of a Nix cache/);

    // Independently: nothing was deleted, every narinfo's NAR and references exist...
    const after = new Set(await listKeysRaw(client, bucket));
    for (const k of damagedKeys) assert.ok(after.has(k), `${k} was deleted`);
    assert.ok(after.has(`${hp(dropped)}.narinfo`));
    assert.ok(after.has(goneNar));
    assert.deepEqual((await checkCacheIntegrity(client, bucket)).problems, []);
    assert.equal((await bytes(cutInfo.url)).length, (await info(cut)).fileSize);
    // ...and real Nix substitutes the whole closure with require-sigs, byte for byte.
    const root = await substituteFresh(cache.url, cache.publicKey, [top]);
    for (const p of paths) {
      assert.deepEqual(readFileSync(join(root, p)), readFileSync(p), p);
    }
  } finally {
    await pctx.close();
    await blobs.close();
  }
});
