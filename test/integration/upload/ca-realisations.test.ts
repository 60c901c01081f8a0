/**
 * Realisations of content-addressed derivations, end to end with real Nix 2.8. A nix-daemon
 * of the test's own with `ca-derivations` builds two CA derivations (top references dep);
 * Loft pushes the top output and its .drv through that daemon; then:
 * - the bucket holds a realisation for each derivation Nix registered one for (as written
 *   and as resolved), with the JSON `nix realisation info` prints (minus signatures) and one
 *   signature by the cache key;
 * - a second, empty store with ca-derivations, the bucket as its only substituter over
 *   HTTP, `require-sigs` and only the cache key trusted, and `--max-jobs 0` (it cannot
 *   build), realises the top derivation, which only works through its realisation: with
 *   the realisations deleted from the bucket, the same command fails;
 * - `nix copy --from` the bucket into an empty store, which checks realisation signatures
 *   against `trusted-public-keys`, accepts Loft's and refuses the realisation unsigned.
 *
 * The shared test daemon has no ca-derivations and is left alone. The daemon started here
 * serves the real /nix store with ca-derivations on, which adds Nix's CA tables
 * (Realisations, RealisationsRefs) to /nix/var/nix/db/db.sqlite: harmless on a test machine,
 * and what any Nix with ca-derivations does to its store.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { freshStoreRoot, offline, prelude, runNix, salt } from '../../support/nix.js';
import { spawnNixDaemon, type SpawnedDaemon } from '../../support/fixtures.js';
import { makePublicCache, type TestCache } from '../../support/cache.js';
import { hasNarInfo, runLoft, setupService } from '../service/support.js';

const CA_FEATURES = 'experimental-features = nix-command ca-derivations';
const daemonDir = mkdtempSync(join(tmpdir(), 'loft-ca-daemon-'));
const socket = join(daemonDir, 'socket');
/** A Nix client of that daemon, with the feature (the client computes realisation ids). */
const clientEnv = { NIX_REMOTE: `unix://${socket}`, NIX_CONFIG: CA_FEATURES };
let daemon: SpawnedDaemon | undefined;
before(async () => {
  daemon = await spawnNixDaemon([], socket, {
    env: {
      ...process.env,
      NIX_DAEMON_SOCKET_PATH: socket,
      NIX_CONFIG: `${CA_FEATURES}\nsubstituters =`,
    },
  });
});
after(async () => {
  await daemon?.stop();
  rmSync(daemonDir, { recursive: true, force: true });
});

function caExpression(s: string): string {
  const ca = `
    __contentAddressed = true;
    outputHashMode = "recursive";
    outputHashAlgo = "sha256";`;
  return `${prelude(s, ca)} rec {
  dep = mk "ca-real-dep" "mkdir $out; echo dep-${s} > $out/f";
  top = mk "ca-real-top" "mkdir $out; echo \${dep} > $out/ref; echo top > $out/f";
}`;
}

/** Build `top` through the CA daemon: its output, and both derivations as written. */
async function buildCa(file: string): Promise<{ topOut: string; topDrv: string; depDrv: string }> {
  const nix = (cmd: string, args: string[]) => runNix(cmd, args, undefined, clientEnv);
  const built = await nix('nix-build', [file, '-A', 'top', '--no-out-link', ...offline]);
  return {
    topOut: built.trim().split('\n').pop()!,
    topDrv: (await nix('nix-instantiate', [file, '-A', 'top'])).trim(),
    depDrv: (await nix('nix-instantiate', [file, '-A', 'dep'])).trim(),
  };
}

interface NixRealisation {
  id: string;
  outPath: string;
  signatures: string[];
  dependentRealisations: Record<string, string>;
}

async function realisationInfo(drv: string): Promise<NixRealisation[]> {
  const out = await runNix('nix', ['realisation', 'info', '--json', drv], undefined, clientEnv);
  return JSON.parse(out) as NixRealisation[];
}

async function bucketRealisations(cache: TestCache): Promise<Map<string, string>> {
  const listed = await cache.client.send(
    new ListObjectsV2Command({ Bucket: cache.bucket, Prefix: 'realisations/' }),
  );
  const out = new Map<string, string>();
  for (const o of listed.Contents ?? []) {
    const r = await cache.client.send(new GetObjectCommand({ Bucket: cache.bucket, Key: o.Key }));
    out.set(o.Key!, await r.Body!.transformToString());
  }
  return out;
}

/** Real Nix, an empty store, the bucket its only substituter, signatures required. */
function clientOptions(cache: TestCache, root: string): string[] {
  return [
    '--option', 'substituters', cache.url,
    '--option', 'trusted-public-keys', cache.publicKey,
    '--option', 'require-sigs', 'true',
    '--option', 'narinfo-cache-negative-ttl', '0',
    '--option', 'narinfo-cache-positive-ttl', '0',
    '--store', root,
  ]; // prettier-ignore
}

/** `nix-build -A top` into an empty store that may not build: substitution or nothing. */
async function realiseInFreshStore(cache: TestCache, file: string): Promise<string> {
  const root = freshStoreRoot();
  try {
    const out = await runNix(
      'nix-build',
      [file, '-A', 'top', '--no-out-link', '--max-jobs', '0', ...clientOptions(cache, root)],
      undefined,
      { NIX_CONFIG: CA_FEATURES, XDG_CACHE_HOME: join(root, '.cache') },
    );
    const path = out.trim().split('\n').pop()!;
    return readFileSync(join(root, path.slice(1), 'f'), 'utf8');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** `nix copy` of the top derivation's output from the bucket into an empty store. */
/**
 * nix copy from the bucket into a fresh store. Nix 2.8 copies paths on several threads, and
 * when one fails the others are interrupted; now and then that interruption escapes and
 * the process aborts ("terminate called after throwing an instance of 'nix::Interrupted'")
 * before it prints the failure. Such a run says nothing, so it is run once more.
 */
async function copyFromBucket(cache: TestCache, file: string): Promise<void> {
  try {
    await copyOnce(cache, file);
  } catch (e) {
    if (!/terminate called after throwing an instance of 'nix::Interrupted'/.test(String(e))) {
      throw e;
    }
    await copyOnce(cache, file);
  }
}

async function copyOnce(cache: TestCache, file: string): Promise<void> {
  const root = freshStoreRoot();
  try {
    await runNix(
      'nix',
      [
        'copy',
        '--from',
        cache.url,
        '--to',
        root,
        '-f',
        file,
        'top',
        ...clientOptions(cache, root).slice(0, -2),
      ],
      undefined,
      { NIX_CONFIG: CA_FEATURES, XDG_CACHE_HOME: join(root, '.cache') },
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

test('Loft uploads signed realisations for a CA output and for its .drv, and real Nix substitutes through them', async () => {
  const cache = await makePublicCache('ca-real');
  const setup = setupService(cache, undefined, { daemon_socket: JSON.stringify(socket) });
  const dir = mkdtempSync(join(tmpdir(), 'loft-ca-'));
  const file = join(dir, 'default.nix');
  const s = salt();
  writeFileSync(file, caExpression(s));
  try {
    const { topOut, topDrv, depDrv } = await buildCa(file);
    // The output's deriver is the resolved derivation (dep's output in place of dep.drv).
    const resolvedDrv = (
      await runNix('nix-store', ['-q', '--deriver', topOut], undefined, clientEnv)
    ).trim();
    assert.notEqual(resolvedDrv, topDrv);

    // What Nix registered, per derivation: the oracle for ids, paths and dependencies.
    const [original] = await realisationInfo(topDrv);
    const [resolved] = await realisationInfo(resolvedDrv);
    const [depReal] = await realisationInfo(depDrv);
    assert.ok(original && resolved && depReal);
    const keyOf = (e: NixRealisation) => `realisations/${e.id}.doi`;
    const keyName = cache.publicKey.split(':')[0]!;
    const checkAgainstNix = (inBucket: Map<string, string>, expected: NixRealisation[]) => {
      assert.deepEqual([...inBucket.keys()].sort(), expected.map(keyOf).sort());
      for (const e of expected) {
        const got = JSON.parse(inBucket.get(keyOf(e))!) as NixRealisation;
        assert.deepEqual({ ...got, signatures: [] }, { ...e, signatures: [] });
        assert.equal(got.signatures.length, 1, JSON.stringify(got));
        assert.ok(got.signatures[0]!.startsWith(`${keyName}:`), JSON.stringify(got));
      }
    };

    // The output alone: path info leads to the resolved derivation and to dep's, which is
    // enough for a client that resolves the derivation itself.
    let r = await runLoft(['-c', setup.toml, '--upload-path', topOut], setup.env);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(await hasNarInfo(cache.client, cache.bucket, topOut));
    checkAgainstNix(await bucketRealisations(cache), [resolved, depReal]);
    // An empty store that cannot build gets the output from the bucket, through the
    // realisations (nothing else maps the derivation to its output path).
    assert.equal(await realiseInFreshStore(cache, file), 'top\n');

    // The .drv too: the realisation of the derivation as written.
    r = await runLoft(['-c', setup.toml, '--upload-path', topDrv], setup.env);
    assert.equal(r.code, 0, r.stderr);
    const inBucket = await bucketRealisations(cache);
    checkAgainstNix(inBucket, [original, resolved, depReal]);
    assert.equal(await realiseInFreshStore(cache, file), 'top\n');
    // Nix checks realisation signatures when it copies them: Loft's pass.
    await copyFromBucket(cache, file);

    // The same with the realisations unsigned: nix copy refuses them.
    for (const [key, json] of inBucket) {
      const unsigned = JSON.stringify({ ...(JSON.parse(json) as object), signatures: [] });
      await cache.client.send(
        new PutObjectCommand({ Bucket: cache.bucket, Key: key, Body: unsigned }),
      );
    }
    await assert.rejects(copyFromBucket(cache, file), /lacks a valid signature/);

    // And without them, the store that cannot build cannot get the output.
    for (const key of inBucket.keys()) {
      await cache.client.send(new DeleteObjectCommand({ Bucket: cache.bucket, Key: key }));
    }
    await assert.rejects(
      realiseInFreshStore(cache, file),
      /max-jobs|cannot build|required to build/,
    );
  } finally {
    rmSync(setup.dir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--watch-exec -- nix-build of a CA derivation uploads the realisation of the derivation as written', async () => {
  const cache = await makePublicCache('ca-real-wx');
  const setup = setupService(cache, undefined, { daemon_socket: JSON.stringify(socket) });
  const dir = mkdtempSync(join(tmpdir(), 'loft-ca-'));
  const file = join(dir, 'default.nix');
  writeFileSync(file, caExpression(salt()));
  try {
    // The .drv files are written while the command runs, so they are new paths too.
    const r = await runLoft(
      [
        '-c',
        setup.toml,
        '--watch-exec',
        '--',
        'nix-build',
        file,
        '-A',
        'top',
        '--no-out-link',
        ...offline,
      ],
      { ...setup.env, ...clientEnv },
    );
    assert.equal(r.code, 0, r.stderr);
    const topDrv = (
      await runNix('nix-instantiate', [file, '-A', 'top'], undefined, clientEnv)
    ).trim();
    const [original] = await realisationInfo(topDrv);
    assert.ok(original);
    const inBucket = await bucketRealisations(cache);
    const got = inBucket.get(`realisations/${original.id}.doi`);
    assert.ok(got, `${original.id} uploaded; the bucket has ${[...inBucket.keys()].join(' ')}`);
    assert.deepEqual(
      { ...(JSON.parse(got) as NixRealisation), signatures: [] },
      {
        ...original,
        signatures: [],
      },
    );
    assert.equal(await realiseInFreshStore(cache, file), 'top\n');
  } finally {
    rmSync(setup.dir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
});

test('through a nix-daemon without ca-derivations, Loft says once that it cannot get realisations and uploads the paths', async () => {
  const cache = await makePublicCache('ca-real-off');
  // A second daemon on the same store, without the feature (Nix 2.8 aborts the worker
  // serving a QueryRealisation then).
  const plainSocket = join(daemonDir, 'plain-socket');
  const plain = await spawnNixDaemon([], plainSocket, {
    env: { ...process.env, NIX_DAEMON_SOCKET_PATH: plainSocket, NIX_CONFIG: 'substituters =' },
  });
  const setup = setupService(cache, undefined, { daemon_socket: JSON.stringify(plainSocket) });
  const dir = mkdtempSync(join(tmpdir(), 'loft-ca-'));
  const file = join(dir, 'default.nix');
  writeFileSync(file, caExpression(salt()));
  try {
    const { topOut, topDrv, depDrv } = await buildCa(file);
    const r = await runLoft(
      ['-c', setup.toml, '--upload-path', topOut, '--upload-path', topDrv, '--upload-path', depDrv],
      setup.env,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.ok(await hasNarInfo(cache.client, cache.bucket, topOut));
    const said = r.stderr
      .split('\n')
      .filter((l) => l.includes('dropped the connection when asked for a realisation'));
    assert.equal(said.length, 1, r.stderr);
    assert.deepEqual([...(await bucketRealisations(cache)).keys()], []);
  } finally {
    await plain.stop();
    rmSync(setup.dir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
});
