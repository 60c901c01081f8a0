/**
 * RealisationUploader over a local-directory bucket, with the .drv files and realisations
 * real Nix 2.8 made (test/unit/nix/ca-vectors.ts) and a stand-in for the daemon's two
 * answers (path info, QueryRealisation): a realisation is written only when its output and
 * its dependencies' outputs have narinfos in the bucket, dependencies with it; a daemon
 * too old for QueryRealisation is reported once and nothing is asked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RealisationUploader, type RealisationDeps } from '../../../src/upload/realisations.js';
import { createLocalDirStore } from '../../../src/storage/local-dir-store.js';
import type { BlobStore } from '../../../src/storage/port.js';
import { parseRealisation, realisationFingerprint } from '../../../src/nix/realisation.js';
import { generateKeyPair } from '../../../src/nix/signing.js';
import { protocolVersion } from '../../../src/daemon/constants.js';
import { MemoryLogger } from '../../../src/util/log.js';
import { DRV_BASENAMES, DRV_TEXTS, REALISATIONS } from '../nix/ca-vectors.js';

const byId = new Map(
  Object.values(REALISATIONS).map((json) => [parseRealisation(json).id, parseRealisation(json)]),
);
const top = parseRealisation(REALISATIONS.top);
const dep = parseRealisation(REALISATIONS.dep);
const ia = parseRealisation(REALISATIONS.ia);
const { secretKey: key } = generateKeyPair('cache-1');

function setup(t: { after(fn: () => void): void }, protocolMinor = 34) {
  const dir = mkdtempSync(join(tmpdir(), 'loft-real-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const storeDir = join(dir, 'store');
  const blobs = createLocalDirStore({ dir: join(dir, 'cache') });
  mkdirSync(storeDir);
  for (const [role, base] of Object.entries(DRV_BASENAMES)) {
    writeFileSync(join(storeDir, base), DRV_TEXTS[role as keyof typeof DRV_TEXTS]);
  }
  const asked: string[] = [];
  const logger = new MemoryLogger();
  const version = protocolVersion(1, protocolMinor);
  const store: RealisationDeps['store'] = {
    storeDir: '/nix/store',
    supportsRealisations: protocolMinor >= 27,
    daemonInfo: {
      version,
      daemonProtocol: version,
      daemonNixVersion: undefined,
      trusted: undefined,
      daemonFeatures: [],
    },
    queryPathInfo: () => Promise.resolve(undefined),
    queryRealisation: (id) => {
      asked.push(id);
      return Promise.resolve(byId.get(id));
    },
  };
  const uploader = new RealisationUploader({
    store,
    blobs,
    signingKey: key,
    storeDirOnDisk: storeDir,
    logger,
  });
  return { blobs, uploader, asked, logger };
}

async function publish(blobs: BlobStore, outPath: string): Promise<void> {
  await blobs.put(`${outPath.slice(0, 32)}.narinfo`, 'StorePath: x\n');
}

async function realisationKeys(blobs: BlobStore): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of blobs.list('realisations/')) keys.push(o.key);
  return keys.sort();
}

test('the .drv as written: its realisation and its dependencies, signed, once their outputs are cached, and once per run', async (t) => {
  const { blobs, uploader, asked } = setup(t);
  for (const r of [top, dep, ia]) await publish(blobs, r.outPath);
  const res = await uploader.upload([`/nix/store/${DRV_BASENAMES.top}`]);
  assert.deepEqual(res, { uploaded: 3, skipped: 0 });
  // A later push of the same run (watch-exec's final push) writes nothing again and asks
  // only about what the daemon did not have (top's `dev` output was never built).
  const askedBefore = asked.length;
  assert.deepEqual(await uploader.upload([`/nix/store/${DRV_BASENAMES.top}`]), {
    uploaded: 0,
    skipped: 0,
  });
  assert.deepEqual(asked.slice(askedBefore), [top.id.replace('!out', '!dev')]);
  assert.deepEqual(
    await realisationKeys(blobs),
    [top, dep, ia].map((r) => `realisations/${r.id}.doi`).sort(),
  );
  const written = parseRealisation((await blobs.get(`realisations/${top.id}.doi`))!.toString());
  assert.deepEqual(written.dependentRealisations, top.dependentRealisations);
  // Nix's own signature (the machine's key) stays; the cache key's is added.
  assert.equal(written.signatures.length, 2);
  assert.ok(written.signatures.includes(top.signatures[0]!));
  const ours = written.signatures.find((s) => s.startsWith('cache-1:'))!;
  assert.ok(
    key.publicKey().verify(realisationFingerprint(top), ours),
    'signature by the cache key verifies',
  );
});

test('a realisation whose dependency output is not cached is not written; the others are', async (t) => {
  const { blobs, uploader } = setup(t);
  for (const r of [top, dep]) await publish(blobs, r.outPath);
  const res = await uploader.upload([`/nix/store/${DRV_BASENAMES.top}`]);
  assert.deepEqual(res, { uploaded: 1, skipped: 2 });
  assert.deepEqual(await realisationKeys(blobs), [`realisations/${dep.id}.doi`]);
});

test('a daemon below protocol 1.27 is reported once and never asked', async (t) => {
  const { uploader, asked, logger, blobs } = setup(t, 21);
  await uploader.upload([`/nix/store/${DRV_BASENAMES.top}`]);
  await uploader.upload([`/nix/store/${DRV_BASENAMES.dep}`]);
  const told = logger.lines.filter((l) => l.fields?.event === 'realisations-unsupported');
  assert.equal(told.length, 1);
  assert.match(told[0]!.msg, /protocol 1\.21.*cannot list realisations/);
  assert.deepEqual(asked, []);
  assert.deepEqual(await realisationKeys(blobs), []);
});
