/**
 * The pure audit and repair plan over hand-made listings and narinfos signed with a fresh
 * key: each rule on its own, and what counts as damage versus a notice.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { audit, deepFindings } from '../../../src/verify/audit.js';
import { isDamage } from '../../../src/verify/findings.js';
import { planRepair } from '../../../src/verify/repair.js';
import { formatNarInfo, type NarInfo } from '../../../src/nix/narinfo.js';
import { generateKeyPair, signNarInfo } from '../../../src/nix/signing.js';
import { Hash } from '../../../src/nix/hash.js';
import { trustedKeysOf } from '../../../src/cli/commands/verify.js';
import { LoftError } from '../../../src/util/errors.js';

const { secretKey, publicKey } = generateKeyPair('audit-test-1');
const other = generateKeyPair('other-1');
const H = (c: string) => c.repeat(32);
const sha = (s: string) => createHash('sha256').update(s).digest();
const nix32 = (s: string) => new Hash('sha256', sha(s)).toNix32String();

function narinfo(hash: string, refs: string[] = [], key = secretKey): NarInfo {
  const narHash = nix32(`nar-${hash}`);
  return signNarInfo(
    {
      storePath: `/nix/store/${hash}-p`,
      url: `nar/${narHash.slice(7)}.nar.zst`,
      compression: 'zstd',
      fileHash: nix32(`file-${hash}`),
      fileSize: 100,
      narHash,
      narSize: 200,
      references: refs.map((r) => `${r}-p`),
      sigs: [],
    },
    key,
  );
}

function bucket(infos: NarInfo[], extra: { key: string; size: number }[] = []) {
  const narInfos = new Map<string, string>();
  const objects = [{ key: 'nix-cache-info', size: 30 }, ...extra];
  for (const i of infos) {
    const hp = i.storePath.slice(11, 43);
    narInfos.set(`${hp}.narinfo`, formatNarInfo(i));
    objects.push({ key: `${hp}.narinfo`, size: 300 }, { key: i.url, size: i.fileSize! });
  }
  return {
    objects,
    narInfos,
    cacheInfo: 'StoreDir: /nix/store\n',
    trustedKeys: [publicKey],
    storeDir: '/nix/store',
  };
}

test('a sound cache has no findings; every NAR is handed to the deep check', () => {
  const r = audit(bucket([narinfo(H('a'), [H('b'), H('a')]), narinfo(H('b'))]));
  assert.deepEqual(r.findings, []);
  assert.equal(r.narInfos, 2);
  assert.equal(r.nars, 2);
  assert.equal(r.sound.length, 2);
});

test('each shallow rule: signature, missing NAR, size, reference, parse, store path, cache info', () => {
  const a = narinfo(H('a'), [H('z')]);
  const b = narinfo(H('b'), [], other.secretKey);
  const c = narinfo(H('c'));
  const input = bucket([a, b, c], [{ key: 'stray.txt', size: 3 }]);
  input.objects = input.objects
    .filter((o) => o.key !== a.url)
    .map((o) => (o.key === c.url ? { ...o, size: 99 } : o));
  input.objects.push({ key: `${H('d')}.narinfo`, size: 5 }, { key: `${H('g')}.narinfo`, size: 5 });
  input.narInfos.set(`${H('d')}.narinfo`, 'garbage\n');
  input.narInfos.set(`${H('g')}.narinfo`, formatNarInfo(narinfo(H('f'))));
  input.cacheInfo = 'StoreDir: /gnu/store\n';
  const kinds = audit(input)
    .findings.map((f) => `${f.kind} ${f.key}`)
    .sort();
  assert.deepEqual(
    kinds,
    [
      `foreign-object stray.txt`,
      `missing-nar ${H('a')}.narinfo`,
      `missing-reference ${H('a')}.narinfo`,
      `nar-size ${H('c')}.narinfo`,
      `untrusted-signature ${H('b')}.narinfo`,
      `unparsable-narinfo ${H('d')}.narinfo`,
      `wrong-store-path ${H('g')}.narinfo`,
      'cache-info nix-cache-info',
    ].sort(),
  );
});

test('a narinfo that vanished between listing and reading is not a finding; orphans are notices', () => {
  const a = narinfo(H('a'));
  const input = bucket([a]);
  input.narInfos.delete(`${H('a')}.narinfo`);
  const r = audit(input);
  assert.deepEqual(
    r.findings.map((f) => [f.kind, isDamage(f)]),
    [['orphan-nar', false]],
  );
});

test('deepFindings compares FileHash, NarHash and NarSize with what was measured', () => {
  const a = narinfo(H('a'));
  const n = { key: `${H('a')}.narinfo`, hashPart: H('a'), info: a, narKey: a.url };
  const good = {
    fileSha256: sha(`file-${H('a')}`),
    fileSize: 100,
    narSha256: sha(`nar-${H('a')}`),
    narSize: 200,
  };
  assert.deepEqual(deepFindings(n, good), []);
  assert.deepEqual(
    deepFindings(n, { ...good, fileSha256: sha('x') }).map((f) => f.kind),
    ['file-hash'],
  );
  assert.deepEqual(
    deepFindings(n, { ...good, narSize: 199 }).map((f) => f.kind),
    ['nar-hash'],
  );
  assert.deepEqual(
    deepFindings(n, { ...good, narSha256: sha('y') }).map((f) => f.kind),
    ['nar-hash'],
  );
});

test('planRepair: damaged narinfos are rewritten, missing references uploaded, notices left alone', () => {
  const plan = planRepair([
    { kind: 'missing-nar', key: `${H('a')}.narinfo`, hashPart: H('a'), detail: '' },
    { kind: 'untrusted-signature', key: `${H('a')}.narinfo`, hashPart: H('a'), detail: '' },
    {
      kind: 'missing-reference',
      key: `${H('b')}.narinfo`,
      hashPart: H('b'),
      missingKey: `${H('c')}.narinfo`,
      detail: '',
    },
    { kind: 'foreign-object', key: 'x', detail: '' },
    { kind: 'orphan-nar', key: 'nar/x.nar', detail: '' },
    { kind: 'cache-info', key: 'nix-cache-info', detail: 'StoreDir is /gnu/store' },
  ]);
  assert.deepEqual(plan.rewrite, [H('a')]);
  assert.deepEqual(plan.missing, [H('c')]);
  assert.deepEqual(
    plan.unrepairable.map((u) => u.finding.kind),
    ['cache-info'],
  );
});

test('--verify needs a key to check signatures against, and trusts the signing key and the list', async () => {
  await assert.rejects(
    trustedKeysOf({ signingKeyPath: undefined, signingKeyName: undefined, trustedPublicKeys: [] }),
    (e: unknown) => e instanceof LoftError && e.code === 'VERIFY_NO_KEYS' && e.kind === 'config',
  );
  const keys = await trustedKeysOf({
    signingKeyPath: undefined,
    signingKeyName: undefined,
    trustedPublicKeys: [publicKey.toString(), other.publicKey.toString()],
  });
  assert.deepEqual(
    keys.map((k) => k.name),
    ['audit-test-1', 'other-1'],
  );
});
