/**
 * The push pipeline against the real nix-daemon and Ceph RGW, proven by real Nix 2.8
 * substituting what we pushed with signatures required and only our key trusted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshStoreRoot, nixBuild, nixRequisites, runNix, salt } from '../../support/nix.js';
import { checkCacheIntegrity, makePublicCache, substituteFresh } from '../../support/cache.js';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { listKeysRaw, listMultipartUploadsRaw } from '../../support/s3.js';
import { openPushContext } from '../../support/push.js';
import { push, uploadedBytes } from '../../../src/upload/push.js';
import { isLoftError } from '../../../src/util/errors.js';

async function dumpHash(path: string, storeRoot?: string): Promise<string> {
  const args = storeRoot ? ['--store', storeRoot, '--dump', path] : ['--dump', path];
  // runNix returns text; NARs are binary, so hash through the shell instead.
  const out = await runNix('sh', [
    '-c',
    `nix-store ${args.map((a) => `'${a}'`).join(' ')} | sha256sum`,
  ]);
  return out.split(' ')[0]!;
}

// Every file kind and awkward name Nix allows, a self-reference, and a file big enough
// (70 MB of random bytes) to go through multipart upload.
const trickyExpr = `
let
  lib = mk "tricky-lib" ''
    mkdir -p $out/dir/empty-dir $out/deep/a/b/c/d/e/f/g/h/i/j
    printf "" > $out/empty-file
    echo x > "$out/with space"
    echo y > "$out/$(printf 'new\\nline')"
    echo z > "$out/ünïcødé-€"
    echo e > "$out/\u{E000}private-use"
    echo a > "$out/😀astral"
    echo b > "$out/$(printf 'raw\\377byte')"
    printf '#!/bin/sh\\necho tool\\n' > $out/tool
    chmod +x $out/tool
    ln -s /nonexistent/target $out/dangling
    ln -s dir $out/dir-link
    echo $out > $out/self-reference
    echo deep > $out/deep/a/b/c/d/e/f/g/h/i/j/leaf
    i=0; while [ $i -lt 300 ]; do echo $i > $out/dir/f$i; i=$((i+1)); done
    head -c 70000000 /dev/urandom > $out/big
  '';
  mid = mk "tricky-mid" ''
    mkdir $out
    echo \${lib} > $out/ref
    ln -s \${lib}/tool $out/tool-link
  '';
in mk "tricky-top" "echo \${mid} \${lib} > $out"
`;

test('a tricky closure is pushed and real Nix substitutes it with require-sigs', async () => {
  const cache = await makePublicCache('push-tricky');
  const [top] = await nixBuild(trickyExpr);
  const closure = await nixRequisites([top!]);
  assert.equal(closure.length, 3);
  const ctx = await openPushContext({ bucket: cache.bucket, key: cache.key });
  try {
    const r = await push(ctx, [top!], { uploadThreads: 4, skipSignedByKeys: [] });
    assert.equal(r.complete, true, JSON.stringify(r.failed));
    assert.equal(r.uploaded.length, 3);
    assert.ok(
      r.uploaded.some((u) => u.narSize > 70_000_000),
      'the big file went up',
    );

    const root = await substituteFresh(cache.url, cache.publicKey, [top!]);
    for (const p of closure) {
      assert.equal(await dumpHash(p, root), await dumpHash(p), `${p} substitutes byte-identical`);
    }
    const report = await checkCacheIntegrity(cache.client, cache.bucket);
    assert.deepEqual(report.problems, []);
    assert.equal(report.narInfos, 3);

    // A second push finds everything in the cache and uploads nothing.
    const again = await push(ctx, [top!], { uploadThreads: 4, skipSignedByKeys: [] });
    assert.equal(again.uploaded.length, 0);
    assert.equal(again.summary.alreadyCached.paths, 3);
    assert.equal(again.complete, true);
  } finally {
    await ctx.close();
  }
});

test('xz compression produces a cache real Nix substitutes', async () => {
  const cache = await makePublicCache('push-xz');
  const [top] = await nixBuild(`
    let dep = mk "xz-dep" "mkdir $out; seq 1 50000 > $out/numbers";
    in mk "xz-top" "echo \${dep} > $out"`);
  const ctx = await openPushContext({ bucket: cache.bucket, key: cache.key, compression: 'xz' });
  try {
    const r = await push(ctx, [top!], { uploadThreads: 2, skipSignedByKeys: [] });
    assert.equal(r.complete, true);
    const keys = await listKeysRaw(cache.client, cache.bucket, 'nar/');
    assert.equal(keys.length, 2);
    assert.ok(keys.every((k) => k.endsWith('.nar.xz')));
    const bytes = uploadedBytes(r);
    assert.ok(bytes.file < bytes.nar, 'compressed');
    await substituteFresh(cache.url, cache.publicKey, [top!]);
  } finally {
    await ctx.close();
  }
});

for (const source of ['packer', 'daemon'] as const) {
  test(`a corrupt store path is refused and not published; its healthy dependencies are (NAR from the ${source})`, async () => {
    const cache = await makePublicCache(`push-corrupt-${source}`);
    const s = salt();
    const [top] = await nixBuild(
      `
    let
      healthy = mk "corrupt-dep" "mkdir $out; echo fine > $out/file";
      bad = mk "corrupt-mid" "mkdir $out; echo \${healthy} > $out/file; head -c 3000000 /dev/urandom > $out/blob";
    in mk "corrupt-top" "echo \${bad} > $out"`,
      s,
    );
    const closure = await nixRequisites([top!]);
    const healthy = closure.find((p) => p.endsWith('-corrupt-dep'))!;
    const bad = closure.find((p) => p.endsWith('-corrupt-mid'))!;
    // Change the bytes behind Nix's back (this path is only this test's: it carries a salt).
    chmodSync(bad, 0o755);
    chmodSync(join(bad, 'file'), 0o644);
    writeFileSync(join(bad, 'file'), 'tampered\n');
    chmodSync(join(bad, 'file'), 0o444);
    chmodSync(bad, 0o555);

    const ctx = await openPushContext({ bucket: cache.bucket, key: cache.key, source });
    try {
      const r = await push(ctx, [top!], { uploadThreads: 3, skipSignedByKeys: [] });
      assert.equal(r.complete, false);
      assert.deepEqual(
        r.uploaded.map((u) => u.path),
        [healthy],
      );
      const failedBad = r.failed.find((f) => f.path === bad)!;
      assert.ok(isLoftError(failedBad.error, 'NAR_MISMATCH'), String(failedBad.error));
      assert.match(failedBad.reason, /looks corrupt/);
      assert.match(r.failed.find((f) => f.path === top)!.reason, /depends on .*corrupt-mid/);

      const keys = await listKeysRaw(cache.client, cache.bucket);
      const hp = (p: string) => p.slice('/nix/store/'.length, '/nix/store/'.length + 32);
      assert.ok(keys.includes(`${hp(healthy)}.narinfo`));
      assert.ok(!keys.includes(`${hp(bad)}.narinfo`));
      assert.ok(!keys.includes(`${hp(top!)}.narinfo`));
      // The corrupt NAR never lands. (The dependent's NAR may, if it finished before the
      // failure: an orphan no narinfo names, removed by prune; deleting it could break another
      // machine's narinfo for the same path, so it is left.)
      const narKeyOf = async (p: string) => {
        const hash = (await runNix('nix-store', ['-q', '--hash', p])).trim();
        return `nar/${hash.slice('sha256:'.length)}.nar.zst`;
      };
      assert.ok(keys.includes(await narKeyOf(healthy)));
      assert.ok(!keys.includes(await narKeyOf(bad)), 'no NAR for the corrupt path');
      assert.deepEqual(await listMultipartUploadsRaw(cache.client, cache.bucket), []);
      assert.deepEqual((await checkCacheIntegrity(cache.client, cache.bucket)).problems, []);
    } finally {
      await ctx.close();
    }
  });
}

test('paths signed by an upstream key are left to upstream', async () => {
  const cache = await makePublicCache('push-upstream');
  const [top] = await nixBuild(`
    let up = mk "upstream-dep" "mkdir $out; echo from-upstream > $out/file";
    in mk "upstream-top" "echo \${up} > $out"`);
  const closure = await nixRequisites([top!]);
  const up = closure.find((p) => p.endsWith('-upstream-dep'))!;
  // Sign it in the local store with a key named like an upstream cache's.
  const dir = join(process.env.TMPDIR ?? '/tmp', `loft-upstream-${salt()}`);
  await runNix('mkdir', ['-p', dir]);
  await runNix('nix-store', [
    '--generate-binary-cache-key',
    'upstream-test-1',
    `${dir}/sk`,
    `${dir}/pk`,
  ]);
  await runNix('nix', ['store', 'sign', '--key-file', `${dir}/sk`, up]);

  const ctx = await openPushContext({ bucket: cache.bucket, key: cache.key });
  try {
    const r = await push(ctx, [top!], { uploadThreads: 2, skipSignedByKeys: ['upstream-test-1'] });
    assert.equal(r.complete, true);
    assert.equal(r.summary.upstream.paths, 1);
    assert.deepEqual(
      r.uploaded.map((u) => u.path),
      [top],
    );
    const keys = await listKeysRaw(cache.client, cache.bucket);
    assert.ok(!keys.some((k) => k.startsWith(up.slice(11, 43))), 'nothing of the upstream path');
    const report = await checkCacheIntegrity(cache.client, cache.bucket, (ref) => up.endsWith(ref));
    assert.deepEqual(report.problems, []);
  } finally {
    await ctx.close();
  }
});

test('a checker running during a push never sees a narinfo without its NAR or references', async () => {
  const cache = await makePublicCache('push-concurrent');
  // 30 paths: a chain of 10, each with two leaves hanging off it; 1 MB of data each.
  const [top] = await nixBuild(`
    let
      leaf = i: mk "leaf-\${toString i}" "mkdir $out; head -c 1000000 /dev/urandom > $out/data";
      step = prev: i: mk "chain-\${toString i}" "mkdir $out; echo \${prev} \${leaf (i * 2)} \${leaf (i * 2 + 1)} > $out/refs; head -c 1000000 /dev/urandom > $out/data";
      chain = builtins.foldl' step (leaf 100) (builtins.genList (i: i) 10);
    in chain`);
  const total = (await nixRequisites([top!])).length;
  const ctx = await openPushContext({ bucket: cache.bucket, key: cache.key });
  let done = false;
  const seen: number[] = [];
  const problems: string[] = [];
  const checker = (async () => {
    while (!done) {
      const report = await checkCacheIntegrity(cache.client, cache.bucket);
      seen.push(report.narInfos);
      problems.push(...report.problems);
    }
  })();
  try {
    const r = await push(ctx, [top!], { uploadThreads: 3, skipSignedByKeys: [] });
    assert.equal(r.complete, true);
  } finally {
    done = true;
    await checker;
    await ctx.close();
  }
  assert.deepEqual(problems, []);
  assert.ok(
    seen.some((n) => n > 0 && n < total),
    `the checker saw the cache mid-push (narinfo counts seen: ${seen.join(',')})`,
  );
  const final = await checkCacheIntegrity(cache.client, cache.bucket);
  assert.equal(final.narInfos, total);
  assert.deepEqual(final.problems, []);
});

test('listings (.ls) are written next to narinfos when asked', async () => {
  const cache = await makePublicCache('push-ls');
  const [p] = await nixBuild(
    `mk "ls-test" "mkdir -p $out/bin $out/empty; echo hi > $out/bin/x; chmod +x $out/bin/x; ln -s bin/x $out/link; printf '' > \\"$out/sp ace\\""`,
  );
  const ctx = await openPushContext({ bucket: cache.bucket, key: cache.key });
  try {
    await push(ctx, [p!], { uploadThreads: 1, skipSignedByKeys: [], writeListing: true });
    const keys = await listKeysRaw(cache.client, cache.bucket);
    const hp = p!.slice(11, 43);
    assert.ok(keys.includes(`${hp}.ls`));
    // The listing Nix itself writes for the same path must be the same bytes.
    const dir = freshStoreRoot();
    await runNix('nix', [
      'copy',
      '--to',
      `file://${dir}?write-nar-listing=true&compression=none`,
      p!,
    ]);
    const ours = await cache.client.send(
      new GetObjectCommand({ Bucket: cache.bucket, Key: `${hp}.ls` }),
    );
    assert.equal(await ours.Body!.transformToString(), readFileSync(join(dir, `${hp}.ls`), 'utf8'));
    assert.equal(ours.ContentType, 'application/json');
  } finally {
    await ctx.close();
  }
});

test('a path that cannot be read from disk is read through the nix-daemon instead', async () => {
  const cache = await makePublicCache('push-fallback');
  const [top] = await nixBuild(`
    let dep = mk "fallback-dep" "mkdir $out; echo d > $out/f";
    in mk "fallback-top" "echo \${dep} > $out"`);
  const ctx = await openPushContext({ bucket: cache.bucket, key: cache.key });
  // The packer looks for the files where there are none; the daemon still has them.
  ctx.realStoreDir = '/nonexistent-store-dir';
  try {
    const r = await push(ctx, [top!], { uploadThreads: 2, skipSignedByKeys: [] });
    assert.equal(r.complete, true, JSON.stringify(r.failed));
    assert.equal(r.uploaded.length, 2);
    await substituteFresh(cache.url, cache.publicKey, [top!]);
  } finally {
    await ctx.close();
  }
});

test('files on disk that are not the daemon`s path are read through the daemon, not called corrupt', async () => {
  const cache = await makePublicCache('push-otherdisk');
  const [p] = await nixBuild(`mk "otherdisk" "mkdir $out; echo real > $out/f"`);
  // A "store on disk" whose copy of the path has other bytes (a chroot store misconfigured
  // without real_store_dir would look like this).
  const fake = mkdtempSync(join(tmpdir(), 'loft-fakestore-'));
  const copy = join(fake, p!.slice('/nix/store/'.length));
  mkdirSync(copy);
  writeFileSync(join(copy, 'f'), 'not the real bytes\n');
  const ctx = await openPushContext({ bucket: cache.bucket, key: cache.key });
  ctx.realStoreDir = fake;
  try {
    const r = await push(ctx, [p!], { uploadThreads: 1, skipSignedByKeys: [] });
    assert.equal(r.complete, true, JSON.stringify(r.failed));
    await substituteFresh(cache.url, cache.publicKey, [p!]);
  } finally {
    await ctx.close();
  }
});
