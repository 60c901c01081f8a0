/**
 * Our ed25519 keys and signatures against Nix 2.8: keys made by either side are read by
 * the other, our signatures equal `nix store sign` byte for byte, and a cache written
 * entirely by our format code (NARs, narinfos, signatures) passes `nix store verify` and
 * `nix copy --from` with signatures required.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { freshStoreRoot, nixBuild, nixRequisites, runNix, salt } from '../../support/nix.js';
import {
  generateKeyPair,
  parsePublicKey,
  parseSecretKey,
  signNarInfo,
  type SecretKey,
} from '../../../src/nix/signing.js';
import {
  formatNarInfo,
  narInfoFingerprint,
  parseNarInfo,
  type NarInfo,
} from '../../../src/nix/narinfo.js';
import { Hash } from '../../../src/nix/hash.js';
import { parseStorePath } from '../../../src/nix/store-path.js';
import { ourNar, runStatus, tempDir } from './helpers.js';

let work: string;
let outputs: string[];
let closure: string[];

before(async () => {
  work = tempDir('signing');
  const s = salt();
  outputs = await nixBuild(
    `let
      dep = mk "dep" "echo dep > $out";
      mid = mk "mid" "mkdir $out; ln -s \${dep} $out/dep; echo $out > $out/self";
    in mk "top" "echo \${mid} > $out"`,
    s,
  );
  closure = await nixRequisites(outputs);
  assert.equal(closure.length, 3);
});

after(() => rmSync(work, { recursive: true, force: true }));

test('keys from nix-store --generate-binary-cache-key parse; we derive the same public key', () => {
  const sk = join(work, 'nix.sk');
  const pk = join(work, 'nix.pk');
  execFileSync('nix-store', ['--generate-binary-cache-key', 'nix-made-1', sk, pk]);
  const secret = parseSecretKey(readFileSync(sk, 'utf8'), sk);
  assert.equal(secret.publicKey().toString(), readFileSync(pk, 'utf8').trim());
  assert.ok(parsePublicKey(readFileSync(pk, 'utf8'), pk).equals(secret.publicKey()));
  assert.equal(secret.exportKeyFile(), readFileSync(sk, 'utf8').trim());
});

test('keys we generate are read by Nix: nix key convert-secret-to-public agrees', async () => {
  const { secretKey, publicKey } = generateKeyPair('loft-made-1');
  const converted = await runNix(
    'nix',
    ['key', 'convert-secret-to-public'],
    secretKey.exportKeyFile(),
  );
  assert.equal(converted.trim(), publicKey.toString());
});

/** `nix copy` into a fresh unsigned file:// cache; returns its directory. */
async function unsignedCache(name: string, paths: string[]): Promise<string> {
  const dir = join(work, name);
  await runNix('nix', ['copy', '--to', `file://${dir}?compression=none`, ...paths]);
  return dir;
}

function readInfos(dir: string): Map<string, NarInfo> {
  const m = new Map<string, NarInfo>();
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.narinfo'))) {
    const info = parseNarInfo(readFileSync(join(dir, f), 'utf8'));
    m.set(info.storePath, info);
  }
  return m;
}

test('our signatures are byte-identical to nix store sign, with a key either side made', async () => {
  const nixSk = join(work, 'sign.sk');
  execFileSync('nix-store', [
    '--generate-binary-cache-key',
    'sign-test-1',
    nixSk,
    join(work, 'sign.pk'),
  ]);
  const ours = generateKeyPair('sign-test-2').secretKey;
  const oursFile = join(work, 'ours.sk');
  writeFileSync(oursFile, ours.exportKeyFile(), { mode: 0o600 });

  for (const [keyFile, key] of [
    [nixSk, parseSecretKey(readFileSync(nixSk, 'utf8'), nixSk)],
    [oursFile, ours],
  ] as [string, SecretKey][]) {
    const dir = await unsignedCache(`sign-${key.name}`, outputs);
    const before = readInfos(dir);
    assert.ok([...before.values()].every((i) => i.sigs.length === 0));
    await runNix('nix', [
      'store',
      'sign',
      '--store',
      `file://${dir}`,
      '--key-file',
      keyFile,
      ...closure,
    ]);
    const after = readInfos(dir);
    assert.equal(after.size, 3);
    for (const [path, info] of after) {
      assert.equal(info.sigs.length, 1, path);
      assert.equal(key.sign(narInfoFingerprint(info)), info.sigs[0], path);
      assert.deepEqual(signNarInfo(before.get(path)!, key).sigs, info.sigs, path);
    }
  }
});

/**
 * A binary cache written by our code alone: NARs from our encoder (uncompressed), narinfos
 * from our formatter with our signatures. References, deriver and CA come from Nix's own
 * path info, as the store layer will provide them.
 */
async function ourCache(dir: string, key: SecretKey): Promise<void> {
  mkdirSync(join(dir, 'nar'), { recursive: true });
  writeFileSync(
    join(dir, 'nix-cache-info'),
    'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n',
  );
  const json = JSON.parse(await runNix('nix', ['path-info', '--json', ...closure])) as {
    path: string;
    narHash: string;
    narSize: number;
    references: string[];
    deriver?: string;
    ca?: string;
  }[];
  for (const p of json) {
    const nar = await ourNar(p.path);
    const narHash = Hash.of('sha256', nar);
    assert.ok(narHash.equals(Hash.parse(p.narHash)), `our NAR of ${p.path} has Nix's narHash`);
    const url = `nar/${narHash.toNix32()}.nar`;
    writeFileSync(join(dir, url), nar);
    const info: NarInfo = {
      storePath: p.path,
      url,
      compression: 'none',
      fileHash: narHash.toNix32String(),
      fileSize: nar.length,
      narHash: narHash.toNix32String(),
      narSize: nar.length,
      references: p.references.map((r) => parseStorePath(r).basename),
      sigs: [],
    };
    if (p.deriver) info.deriver = parseStorePath(p.deriver).basename;
    if (p.ca) info.ca = p.ca;
    const signed = signNarInfo(info, key);
    writeFileSync(join(dir, `${parseStorePath(p.path).hashPart}.narinfo`), formatNarInfo(signed));
  }
}

test('a cache written by our formats passes nix store verify with our key, and only with it', async () => {
  const { secretKey, publicKey } = generateKeyPair('loft-cache-1');
  const dir = join(work, 'ours');
  await ourCache(dir, secretKey);
  const store = `file://${dir}`;
  const ok = await runStatus('nix', [
    'store',
    'verify',
    '--store',
    store,
    '--trusted-public-keys',
    publicKey.toString(),
    ...closure,
  ]);
  assert.equal(ok.code, 0, ok.stderr);
  const other = generateKeyPair('loft-cache-1').publicKey; // same name, different key
  const bad = await runStatus('nix', [
    'store',
    'verify',
    '--store',
    store,
    '--trusted-public-keys',
    other.toString(),
    ...closure,
  ]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /untrusted/);
});

test('nix copy --from our cache into a fresh store succeeds with signatures required', async () => {
  const { secretKey, publicKey } = generateKeyPair('loft-copy-1');
  const dir = join(work, 'ours-copy');
  await ourCache(dir, secretKey);
  const root = freshStoreRoot();
  try {
    const r = await runStatus('nix', [
      'copy',
      '--from',
      `file://${dir}`,
      '--to',
      root,
      '--option',
      'require-sigs',
      'true',
      '--option',
      'trusted-public-keys',
      publicKey.toString(),
      ...outputs,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const valid = await runNix('nix-store', ['--store', root, '--verify-path', ...closure]);
    assert.equal(valid.trim(), '');
    // Without our key trusted, the same copy is refused.
    const root2 = freshStoreRoot();
    try {
      const refused = await runStatus('nix', [
        'copy',
        '--from',
        `file://${dir}`,
        '--to',
        root2,
        '--option',
        'require-sigs',
        'true',
        '--option',
        'trusted-public-keys',
        generateKeyPair('x').publicKey.toString(),
        ...outputs,
      ]);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /lacks a valid signature|signature/);
    } finally {
      rmSync(root2, { recursive: true, force: true });
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
