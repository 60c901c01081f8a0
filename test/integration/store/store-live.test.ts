/**
 * LocalStore against the real nix-daemon: closures as `nix-store -qR` computes them, path
 * info as `nix path-info --json` prints it, NARs as `nix-store --dump` writes them, temp
 * roots that really keep a path from deletion, and a corrupted path caught by narStream.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { Hash } from '../../../src/nix/hash.js';
import { LocalStore, type PathInfo } from '../../../src/store/local-store.js';
import { NarMismatchError } from '../../../src/store/errors.js';
import { isLoftError } from '../../../src/util/errors.js';
import { MemoryLogger } from '../../../src/util/log.js';
import { sleep, startProxy } from '../daemon/support.js';
import { nixBuild, nixRequisites, nixStoreDump, runNix, salt } from '../../support/nix.js';

const exec = promisify(execFile);
const s = salt();

const built = nixBuild(
  `let
    a = mk "a" "echo a > $out";
    b = mk "b" "echo \${a} > $out";
    c = mk "c" "mkdir $out && echo \${a} > $out/a && echo \${b} > $out/b && echo $out > $out/self && ln -s \${b} $out/b-link";
    d = mk "d" "mkdir -p $out/x/y && echo \${c} > $out/x/y/c && printf '#!/bin/sh\\n' > $out/x/run && chmod +x $out/x/run";
    large = mk "large" "head -c 16777216 /dev/zero > $out";
  in [ d c b a large ]`,
  s,
);

async function collect(stream: Readable): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of stream) out.push(c as Buffer);
  return Buffer.concat(out);
}

interface NixPathInfoJson {
  path: string;
  narHash: string;
  narSize: number;
  references: string[];
  deriver?: string;
  registrationTime: number;
  ultimate?: boolean;
  signatures?: string[];
  ca?: string;
}

function assertTopological(infos: PathInfo[]): void {
  const pos = new Map(infos.map((i, k) => [i.path, k]));
  for (const i of infos) {
    for (const r of i.references) {
      if (r !== i.path)
        assert.ok(pos.get(r)! < pos.get(i.path)!, `${r} must come before ${i.path}`);
    }
  }
}

for (const transport of ['socket', 'stdio'] as const) {
  test(`${transport}: closure equals nix-store -qR, dependencies first`, async () => {
    const [d, c] = await built;
    const store = await LocalStore.open({ transport });
    try {
      const infos = await store.closure([d!, c!, d!]);
      assert.deepEqual(infos.map((i) => i.path).sort(), (await nixRequisites([d!, c!])).sort());
      assertTopological(infos);
      assert.equal(infos.at(-1)!.path, d, 'the root comes last');
    } finally {
      await store.close();
    }
  });

  test(`${transport}: path info equals nix path-info --json`, async () => {
    const [d] = await built;
    const store = await LocalStore.open({ transport });
    try {
      const theirs = JSON.parse(
        await runNix('nix', ['path-info', '--json', '-r', d!]),
      ) as NixPathInfoJson[];
      assert.equal(theirs.length, 4);
      for (const t of theirs) {
        const ours = await store.pathInfo(t.path);
        assert.deepEqual(ours, {
          path: t.path,
          deriver: t.deriver,
          narHash: Hash.parse(t.narHash).toNix32String(),
          narSize: t.narSize,
          references: [...t.references].sort(),
          registrationTime: t.registrationTime,
          ultimate: t.ultimate ?? false,
          sigs: t.signatures ?? [],
          ca: t.ca,
        });
        assert.match(ours.narHash, /^sha256:[0-9a-df-np-sv-z]{52}$/);
      }
    } finally {
      await store.close();
    }
  });

  test(`${transport}: narStream gives exactly nix-store --dump`, async () => {
    const paths = (await built).slice(0, 4);
    const store = await LocalStore.open({ transport });
    try {
      const nars = await Promise.all(paths.map((p) => collect(store.narStream(p))));
      for (let i = 0; i < paths.length; i++)
        assert.deepEqual(nars[i], await nixStoreDump(paths[i]!), paths[i]);
    } finally {
      await store.close();
    }
  });
}

test('path info is cached; validPaths, allValidPaths and pathFromHashPart agree with the store', async () => {
  const [d, c, b] = await built;
  const store = await LocalStore.open();
  try {
    const first = await store.pathInfo(c!);
    assert.equal(await store.pathInfo(c!), first, 'same object from the cache');
    const fake = `/nix/store/${'1'.repeat(32)}-loft-never-built-${s}`;
    assert.deepEqual(await store.validPaths([fake, b!, d!, b!]), [b!, d!]);
    assert.equal(await store.queryPathInfo(fake), undefined);
    await assert.rejects(store.pathInfo(fake), (e: unknown) => {
      assert.ok(isLoftError(e, 'PATH_NOT_VALID'));
      assert.match(e.message, new RegExp(`${fake} is not a valid store path`));
      assert.match(e.hint ?? '', /nix-store --verify-path/);
      return true;
    });
    assert.deepEqual(
      (await store.pathInfos([d!, b!])).map((i) => i.path),
      [d!, b!],
    );
    const all = new Set(await store.allValidPaths());
    for (const p of await built) assert.ok(all.has(p), p);
    assert.equal(await store.pathFromHashPart(d!.slice(11, 43)), d);
    assert.equal(store.storeDir, '/nix/store');
  } finally {
    await store.close();
  }
});

test('resolvePath: ./result symlinks, sub-paths; outside the store and invalid paths are refused', async () => {
  const [d] = await built;
  const store = await LocalStore.open();
  const work = mkdtempSync(join(tmpdir(), 'loft-resolve-'));
  symlinkSync(d!, join(work, 'result'));
  try {
    assert.equal(await store.resolvePath('./result', { cwd: work }), d);
    assert.equal(await store.resolvePath(`${d}/x/y/c`), d);
    assert.equal(await store.resolvePath('result/x/run', { cwd: work }), d);
    await assert.rejects(store.resolvePath('/etc/hostname'), (e: unknown) =>
      isLoftError(e, 'PATH_OUTSIDE_STORE'),
    );
    await assert.rejects(store.resolvePath(join(work, 'nope')), (e: unknown) =>
      isLoftError(e, 'PATH_MISSING'),
    );
    const fake = `/nix/store/${'2'.repeat(32)}-loft-never-built-${s}`;
    await assert.rejects(store.resolvePath(fake), (e: unknown) => isLoftError(e, 'PATH_NOT_VALID'));
  } finally {
    await store.close();
  }
});

test('narStream with a stale expectation errors instead of ending', async () => {
  const [, , b] = await built;
  const store = await LocalStore.open();
  try {
    const info = await store.pathInfo(b!);
    assert.equal((await collect(store.narStream(b!, { expect: info }))).length, info.narSize);
    await assert.rejects(
      collect(store.narStream(b!, { expect: { ...info, narSize: info.narSize + 8 } })),
      (e: unknown) => {
        assert.ok(e instanceof NarMismatchError);
        assert.match(e.message, /changed since its path info was read/);
        return true;
      },
    );
  } finally {
    await store.close();
  }
});

test('a corrupted store path: narStream errors with NarMismatchError and the verify hint', async () => {
  const s2 = salt();
  const [p] = await nixBuild(
    `mk "corrupt-me" "mkdir $out && echo good > $out/data && echo ok > $out/other"`,
    s2,
  );
  const file = `${p}/data`;
  const original = readFileSync(file);
  const store = await LocalStore.open();
  const corrupt = (content: string) => {
    chmodSync(file, 0o644);
    writeFileSync(file, content);
    chmodSync(file, 0o444);
  };
  try {
    const info = await store.pathInfo(p!);
    for (const [content, sizeDiffers] of [
      ['evil\n', false],
      ['evil and longer\n', true],
    ] as const) {
      corrupt(content);
      let ended = false;
      const stream = store.narStream(p!);
      stream.on('end', () => (ended = true));
      await assert.rejects(collect(stream), (e: unknown) => {
        assert.ok(e instanceof NarMismatchError, String(e));
        assert.equal(e.code, 'NAR_MISMATCH');
        assert.match(e.message, new RegExp(`store path ${p} looks corrupt`));
        assert.match(
          e.message,
          new RegExp(`registered ${info.narHash.replace('+', '\\+')} \\(${info.narSize} bytes\\)`),
        );
        assert.equal(e.mismatch.actualSize !== info.narSize, sizeDiffers);
        assert.match(e.hint ?? '', new RegExp(`nix-store --verify-path ${p}`));
        assert.match(e.hint ?? '', /nix-store --verify --check-contents --repair/);
        return true;
      });
      assert.equal(ended, false, 'never ended');
    }
  } finally {
    corrupt(original.toString());
    await store.close();
  }
  // Restored: the NAR matches again.
  const again = await LocalStore.open();
  try {
    assert.deepEqual(await collect(again.narStream(p!)), await nixStoreDump(p!));
  } finally {
    await again.close();
  }
});

test('temp roots: a held path cannot be deleted; after release it can', async () => {
  const s3 = salt();
  const [p] = await nixBuild(`mk "rooted" "echo rooted > $out"`, s3);
  const store = await LocalStore.open({ rootsIdleMs: 0 });
  const del = () => exec('nix-store', ['--delete', p!]);
  try {
    const lease = await store.holdTempRoots([p!]);
    await assert.rejects(del(), /still alive|since it is still alive/);
    assert.equal(await store.isValidPath(p!), true);
    lease.release();
    lease.release(); // idempotent
    // The roots connection closes once no lease needs it (rootsIdleMs: 0; the default
    // keeps it 5 s for the next lease); the daemon's worker then exits.
    let deleted = false;
    for (let i = 0; i < 20 && !deleted; i++) {
      deleted = await del().then(
        () => true,
        () => false,
      );
      if (!deleted) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(deleted, 'deletable after release');
    assert.equal(await store.isValidPath(p!), false);
  } finally {
    await store.close();
  }
});

test('temp roots: overlapping leases share a connection; the path stays rooted until the last one goes', async () => {
  const s4 = salt();
  const [p, q] = await nixBuild(`[ (mk "r1" "echo 1 > $out") (mk "r2" "echo 2 > $out") ]`, s4);
  const store = await LocalStore.open({ rootsIdleMs: 0 });
  try {
    const l1 = await store.holdTempRoots([p!]);
    const l2 = await store.holdTempRoots([p!, q!]);
    l1.release();
    await new Promise((r) => setTimeout(r, 300));
    await assert.rejects(exec('nix-store', ['--delete', p!]), /still alive/);
    await assert.rejects(exec('nix-store', ['--delete', q!]), /still alive/);
    l2.release();
    assert.equal(l2.lost, undefined);
  } finally {
    await store.close();
  }
});

async function store2Info(p: string): Promise<PathInfo> {
  const st = await LocalStore.open();
  try {
    return await st.pathInfo(p);
  } finally {
    await st.close();
  }
}

test('close() drains running work; destroy() aborts it; both idempotent', async () => {
  const [d] = await built;
  const store = await LocalStore.open();
  const running = store.closure([d!]);
  const large = (await built)[4]!;
  const streaming = collect(store.narStream(large));
  const closing = store.close();
  assert.equal(store.close(), closing, 'idempotent');
  assert.equal((await running).length, 4, 'the closure walk finished');
  assert.equal(
    (await streaming).length,
    (await store2Info(large)).narSize,
    'the NAR stream finished',
  );
  await closing;
  await assert.rejects(store.pathInfo(d!), (e: unknown) => isLoftError(e, 'DAEMON_CLOSED'));

  const store2 = await LocalStore.open();
  const stream = store2.narStream(large);
  await new Promise((r) => stream.once('readable', r));
  const reading = collect(stream);
  store2.destroy();
  store2.destroy();
  await assert.rejects(reading, (e: unknown) => isLoftError(e, 'DAEMON_CLOSED'));
  await assert.rejects(store2.pathInfo(d!), (e: unknown) => isLoftError(e, 'DAEMON_CLOSED'));
});

test('temp roots survive their connection dying: they are added again on a new one', async () => {
  const s5 = salt();
  const [p] = await nixBuild(`mk "re-rooted" "echo again > $out"`, s5);
  const proxy = await startProxy();
  const logger = new MemoryLogger();
  const store = await LocalStore.open({
    transport: 'socket',
    socketPath: proxy.path,
    rootsIdleMs: 0,
    logger,
  });
  try {
    const lease = await store.holdTempRoots([p!]);
    const before = proxy.accepted();
    proxy.cutAll();
    for (let i = 0; i < 50 && proxy.accepted() === before; i++) await sleep(20);
    assert.ok(proxy.accepted() > before, 'a new roots connection was opened');
    await sleep(200); // let AddTempRoot go through
    await assert.rejects(exec('nix-store', ['--delete', p!]), /still alive/);
    assert.equal(lease.lost, undefined);
    assert.match(logger.text(), /roots connection lost; adding the temp roots again/);
    lease.release();
  } finally {
    await store.close();
    await proxy.close();
  }
});

test('temp roots: a roots connection retires after rootsRecycleAfter paths; its roots go with its last lease', async () => {
  const s6 = salt();
  const [a, b, c] = await nixBuild(
    `[ (mk "ra" "echo a > $out") (mk "rb" "echo b > $out") (mk "rc" "echo c > $out") ]`,
    s6,
  );
  const proxy = await startProxy();
  const store = await LocalStore.open({
    transport: 'socket',
    socketPath: proxy.path,
    rootsRecycleAfter: 2,
    rootsIdleMs: 60_000,
  });
  const deletable = (p: string) =>
    exec('nix-store', ['--delete', p]).then(
      () => true,
      () => false,
    );
  try {
    const opened = proxy.accepted(); // the pool's connection
    const first = await store.holdTempRoots([a!, b!]); // fills the first roots connection
    assert.equal(proxy.accepted(), opened + 1);
    const second = await store.holdTempRoots([c!]); // so this one needs a new connection
    assert.equal(proxy.accepted(), opened + 2);
    first.release(); // the retired connection closes at once, dropping a and b
    let gone = false;
    for (let i = 0; i < 50 && !gone; i++) {
      gone = await deletable(a!);
      if (!gone) await sleep(100);
    }
    assert.ok(gone, 'a is no longer rooted');
    assert.ok(await deletable(b!), 'b is no longer rooted');
    assert.equal(await deletable(c!), false, 'c is still rooted');
    second.release();
  } finally {
    await store.close();
    await proxy.close();
  }
});
