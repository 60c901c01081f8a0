/**
 * Narinfos written by Nix 2.8's `nix copy --to file://...?compression=xz&secret-key=...`
 * parse and re-format byte for byte; our fingerprint verifies Nix's signatures; our NARs and
 * `.ls` listings of the same paths equal the ones Nix stored.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { nixBuild, runNix, salt } from '../../support/nix.js';
import {
  formatNarInfo,
  narInfoFingerprint,
  parseNarInfo,
  type NarInfo,
} from '../../../src/nix/narinfo.js';
import { parsePublicKey, verifyNarInfoSignature } from '../../../src/nix/signing.js';
import { Hash } from '../../../src/nix/hash.js';
import { narListing } from '../../../src/nix/nar-listing.js';
import { parseStorePath } from '../../../src/nix/store-path.js';
import { ourNar, tempDir } from './helpers.js';

let work: string;
let cache: string;
let outputs: string[];
const infos = new Map<string, { text: string; info: NarInfo }>();

before(async () => {
  work = tempDir('narinfo');
  cache = join(work, 'cache');
  const s = salt();
  const fodContent = `fixed-${s}`;
  const fodHash = createHash('sha256').update(fodContent).digest('hex');
  // References, a self-reference, a text CA path (toFile), a fixed-output CA path, derivers:
  // top -> leaf, self, fod; leaf -> text. Five paths.
  outputs = await nixBuild(
    `let
      text = builtins.toFile "text-${s}" "some text";
      fod = derivation {
        name = "fod"; system = builtins.currentSystem; builder = "/bin/sh";
        args = [ "-c" "printf ${fodContent} > $out" ];
        outputHashMode = "flat"; outputHashAlgo = "sha256"; outputHash = "${fodHash}";
      };
      leaf = mk "leaf" "mkdir $out; echo leaf > $out/data; ln -s \${text} $out/text";
      self = mk "self" "echo $out > $out";
      top = mk "top" "mkdir -p $out/bin; printf '#!/bin/sh\\necho \${leaf} \${self} \${fod}\\n' > $out/bin/run; chmod +x $out/bin/run";
    in [ top fod ]`,
    s,
  );
  execFileSync('nix-store', [
    '--generate-binary-cache-key',
    'loft-test-1',
    join(work, 'sk'),
    join(work, 'pk'),
  ]);
  await runNix('nix', [
    'copy',
    '--to',
    `file://${cache}?compression=xz&secret-key=${join(work, 'sk')}&write-nar-listing=true`,
    ...outputs,
  ]);
  for (const f of readdirSync(cache).filter((n) => n.endsWith('.narinfo'))) {
    const text = readFileSync(join(cache, f), 'utf8');
    infos.set(f, { text, info: parseNarInfo(text) });
  }
});

after(() => rmSync(work, { recursive: true, force: true }));

test('the cache holds the closure, with every field kind we care about', () => {
  assert.equal(infos.size, 5, [...infos.keys()].join(' '));
  const all = [...infos.values()].map((v) => v.info);
  assert.ok(
    all.some((i) => i.ca?.startsWith('text:sha256:')),
    'a text CA path',
  );
  assert.ok(
    all.some((i) => i.ca?.startsWith('fixed:sha256:')),
    'a fixed-output CA path',
  );
  assert.ok(
    all.some((i) => i.references.includes(parseStorePath(i.storePath).basename)),
    'a self-reference',
  );
  assert.ok(
    all.some((i) => i.references.length >= 3),
    'several references',
  );
  assert.ok(
    all.some((i) => i.deriver?.endsWith('.drv')),
    'a deriver',
  );
  assert.ok(
    all.some((i) => i.references.length === 0),
    'no references',
  );
  assert.ok(all.every((i) => i.compression === 'xz' && i.sigs.length === 1));
});

test('every Nix-written narinfo re-formats byte for byte', () => {
  for (const [name, { text, info }] of infos) {
    assert.equal(formatNarInfo(info), text, name);
    // And survives a second round trip.
    assert.deepEqual(parseNarInfo(formatNarInfo(info)), info, name);
  }
});

test('our fingerprint verifies the signatures Nix wrote', () => {
  const pk = parsePublicKey(readFileSync(join(work, 'pk'), 'utf8'), join(work, 'pk'));
  for (const [name, { info }] of infos) {
    assert.ok(verifyNarInfoSignature(info, [pk]), name);
    assert.ok(pk.verify(narInfoFingerprint(info), info.sigs[0]!), name);
    assert.ok(
      !verifyNarInfoSignature({ ...info, narSize: info.narSize + 1 }, [pk]),
      `${name} tampered`,
    );
  }
});

test('our NAR of each path has the narinfo NarHash/NarSize and equals the decompressed nar.xz; FileHash/FileSize describe the file', async () => {
  for (const [name, { info }] of infos) {
    const ours = await ourNar(info.storePath);
    assert.equal(Hash.of('sha256', ours).toNix32String(), info.narHash, name);
    assert.equal(ours.length, info.narSize, name);
    const file = readFileSync(join(cache, info.url));
    assert.equal(Hash.of('sha256', file).toNix32String(), info.fileHash, name);
    assert.equal(file.length, info.fileSize, name);
    assert.ok(execFileSync('xz', ['-dc'], { input: file, maxBuffer: 1 << 26 }).equals(ours), name);
  }
});

test('our .ls listing of each NAR is byte-identical to the one Nix wrote', async () => {
  for (const [name, { info }] of infos) {
    const ls = readFileSync(join(cache, name.replace(/\.narinfo$/, '.ls')));
    assert.ok(narListing(await ourNar(info.storePath)).equals(ls), `${name}: ${ls.toString()}`);
  }
});
