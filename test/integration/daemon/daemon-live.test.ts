/**
 * The daemon client against Debian's real nix-daemon (Nix 2.8, protocol 1.34), over the
 * socket and over `nix-daemon --stdio`, compared with what the Nix CLI says.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { DaemonClient } from '../../../src/daemon/client.js';
import { Hash } from '../../../src/nix/hash.js';
import { isLoftError } from '../../../src/util/errors.js';
import { nixBuild, nixRequisites, nixStoreDump, runNix, salt } from '../../support/nix.js';
import { DAEMON_SOCKET, ourStdioDaemons, sleep, startProxy } from './support.js';

const s = salt();
const built = nixBuild(
  `let
    leaf = mk "leaf" "echo leaf > $out";
    tree = mk "tree" ''
      mkdir -p $out/sub
      echo hi > $out/sub/file
      printf '#!/bin/sh\\n' > $out/run && chmod +x $out/run
      ln -s sub/file $out/link
      echo \${leaf} > $out/ref
      echo $out > $out/self
      head -c 3000000 /dev/urandom > $out/big
    '';
    large = mk "large" "head -c 33554432 /dev/zero > $out";
  in [ tree leaf large ]`,
  s,
);

async function collect(stream: Readable): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of stream) out.push(c as Buffer);
  return Buffer.concat(out);
}

/** Poll `f` every 10 ms until it holds or `ms` pass. */
async function until(f: () => boolean, ms: number): Promise<void> {
  for (let t = 0; t < ms && !f(); t += 10) await sleep(10);
}

const nixVersion = runNix('nix-store', ['--version']).then(
  (o) => /(\d+\.\d+(\.\d+)?)/.exec(o)![1]!,
);

for (const transport of ['socket', 'stdio'] as const) {
  test(`${transport}: handshake with the real daemon (protocol 1.34, its Nix version)`, async () => {
    const c = await DaemonClient.open({ transport });
    try {
      assert.equal(c.daemonInfo.version, 0x122);
      assert.equal(c.daemonInfo.daemonProtocol, 0x122);
      assert.equal(c.daemonInfo.daemonNixVersion, await nixVersion);
      assert.equal(c.daemonInfo.trusted, undefined, '1.34 does not send a trust flag');
      if (transport === 'socket') assert.equal(c.endpoint, '/nix/var/nix/daemon-socket/socket');
      else assert.match(c.endpoint, /^nix-daemon --stdio \(pid \d+\)$/);
    } finally {
      await c.close();
    }
  });

  test(`${transport}: queries agree with the Nix CLI`, async () => {
    const [tree, leaf] = await built;
    const c = await DaemonClient.open({ transport });
    try {
      const fake = `/nix/store/${'0'.repeat(32)}-loft-never-built-${s}`;
      assert.equal(await c.isValidPath(tree!), true);
      assert.equal(await c.isValidPath(fake), false);
      assert.deepEqual(
        (await c.queryValidPaths([fake, tree!, leaf!])).sort(),
        [tree!, leaf!].sort(),
      );
      const hashPart = tree!.slice('/nix/store/'.length, '/nix/store/'.length + 32);
      assert.equal(await c.queryPathFromHashPart(hashPart), tree);
      assert.equal(await c.queryPathFromHashPart('0'.repeat(32)), undefined);
      const all = new Set(await c.queryAllValidPaths());
      for (const p of await nixRequisites([tree!])) assert.ok(all.has(p), p);

      const info = await c.queryPathInfo(tree!);
      assert.ok(info);
      const cliHash = (await runNix('nix-store', ['-q', '--hash', tree!])).trim();
      assert.equal(
        info.narHashHex,
        Hash.parse(cliHash).toHex(),
        `nix-store -q --hash says ${cliHash}`,
      );
      assert.deepEqual(
        [...info.references].sort(),
        (await runNix('nix-store', ['-q', '--references', tree!])).trim().split('\n').sort(),
      );
      assert.equal(await c.queryPathInfo(fake), undefined);
    } finally {
      await c.close();
    }
  });

  test(`${transport}: NarFromPath gives exactly nix-store --dump, and the connection goes on`, async () => {
    const [tree, leaf] = await built;
    const c = await DaemonClient.open({ transport, maxConnections: 1 });
    try {
      // One connection: the query after each NAR reads the bytes that follow the NAR.
      for (const p of [tree!, leaf!, tree!]) {
        assert.deepEqual(await collect(await c.narFromPath(p)), await nixStoreDump(p), p);
        assert.equal(await c.isValidPath(p), true);
      }
    } finally {
      await c.close();
    }
  });
}

test('the narHash the daemon reports is the sha256 of nix-store --dump', async () => {
  const [tree] = await built;
  const c = await DaemonClient.open();
  try {
    const info = await c.queryPathInfo(tree!);
    const { createHash } = await import('node:crypto');
    assert.equal(
      info!.narHashHex,
      createHash('sha256')
        .update(await nixStoreDump(tree!))
        .digest('hex'),
    );
    assert.equal(info!.narSize, (await nixStoreDump(tree!)).length);
  } finally {
    await c.close();
  }
});

test('AddSignatures (root is trusted) adds a signature nix path-info then shows', async () => {
  const [leaf] = [(await built)[1]!];
  const c = await DaemonClient.open();
  try {
    const sig = `loft-test-${s}:${Buffer.alloc(64, 7).toString('base64')}`;
    await c.addSignatures(leaf, [sig]);
    assert.ok((await c.queryPathInfo(leaf))!.sigs.includes(sig));
    const json = JSON.parse(await runNix('nix', ['path-info', '--json', '--sigs', leaf])) as {
      signatures?: string[];
    }[];
    assert.ok(json[0]!.signatures?.includes(sig));
  } finally {
    await c.close();
  }
});

test('parallel queries use a bounded pool and all answer correctly', async () => {
  const [tree, leaf] = await built;
  const c = await DaemonClient.open({ maxConnections: 3, maxPipeline: 8 });
  try {
    const paths = Array.from({ length: 300 }, (_, i) => (i % 2 ? tree! : leaf!));
    const infos = await Promise.all(paths.map((p) => c.queryPathInfo(p)));
    infos.forEach((info, i) => assert.equal(info!.path, paths[i]));
    assert.ok(c.connections >= 1 && c.connections <= 3, `connections: ${c.connections}`);
  } finally {
    await c.close();
  }
});

test('close() hangs up on connections still in their handshake instead of waiting for them', async () => {
  const [tree] = await built;
  // The first connection reaches the real daemon; later ones are accepted and never answered,
  // as a daemon busy forking its workers would leave them.
  const dir = mkdtempSync(join(tmpdir(), 'loft-stall-'));
  const path = join(dir, 'socket');
  const stalled = new Set<Socket>();
  let first = true;
  const server = createServer((client) => {
    if (first) {
      first = false;
      const upstream = connect(DAEMON_SOCKET);
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
      return;
    }
    stalled.add(client);
    client.resume(); // read (and drop) the handshake, so the client's hang-up is seen
    client.on('error', () => {});
    client.on('close', () => stalled.delete(client));
  });
  await new Promise<void>((r) => server.listen(path, r));
  const c = await DaemonClient.open({
    transport: 'socket',
    socketPath: path,
    maxConnections: 4,
    maxPipeline: 1,
  });
  try {
    // Queued behind one another on the one live connection, enough to be worth another
    // connection: the pool opens more.
    const infos = await Promise.all(Array.from({ length: 12 }, () => c.queryPathInfo(tree!)));
    infos.forEach((i) => assert.equal(i!.path, tree));
    assert.ok(stalled.size > 0, 'the pool opened more connections while queries waited');
    await c.close();
    await until(() => stalled.size === 0, 2000);
    assert.equal(stalled.size, 0, 'every connection still in its handshake was closed');
  } finally {
    c.destroy();
    for (const s of stalled) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('socket cut in the middle of NarFromPath: the stream errors, the next operation reconnects', async () => {
  const [, , large] = await built;
  const proxy = await startProxy();
  const c = await DaemonClient.open({ transport: 'socket', socketPath: proxy.path });
  try {
    const stream = await c.narFromPath(large!);
    let got = 0;
    const failed = (async () => {
      for await (const chunk of stream) {
        got += (chunk as Buffer).length;
        if (got > 1 << 20) proxy.cutAll();
      }
    })();
    await assert.rejects(failed, (e: unknown) => {
      assert.ok(isLoftError(e, 'DAEMON_CONNECTION_LOST'), String(e));
      assert.match(e.message, new RegExp(proxy.path));
      return true;
    });
    assert.ok(got < 32 << 20, 'the stream did not complete');
    assert.equal(await c.isValidPath(large!), true);
    assert.ok(proxy.accepted() >= 2, 'a new connection was opened');
  } finally {
    await c.close();
    await proxy.close();
  }
});

test('a pooled connection that died while idle is replaced transparently', async () => {
  const [tree] = await built;
  const proxy = await startProxy();
  const c = await DaemonClient.open({
    transport: 'socket',
    socketPath: proxy.path,
    maxConnections: 1,
  });
  try {
    assert.equal(await c.isValidPath(tree!), true);
    proxy.cutAll();
    await sleep(50);
    assert.equal(await c.isValidPath(tree!), true);
    assert.equal(proxy.accepted(), 2);
  } finally {
    await c.close();
    await proxy.close();
  }
});

test('stdio daemon killed in the middle of NarFromPath: the stream errors with its exit, the pool recovers', async () => {
  const [, , large] = await built;
  const c = await DaemonClient.open({ transport: 'stdio' });
  try {
    const before = ourStdioDaemons();
    assert.ok(before.length >= 1, 'our nix-daemon --stdio child is running');
    const stream = await c.narFromPath(large!);
    let got = 0;
    const failed = (async () => {
      for await (const chunk of stream) {
        got += (chunk as Buffer).length;
        if (got > 1 << 20) for (const pid of ourStdioDaemons()) process.kill(pid, 'SIGKILL');
      }
    })();
    await assert.rejects(failed, (e: unknown) => {
      assert.ok(isLoftError(e, 'DAEMON_CONNECTION_LOST'), String(e));
      assert.match(e.message, /nix-daemon --stdio \(pid \d+\)/);
      assert.match(e.message, /killed by SIGKILL/);
      return true;
    });
    assert.equal(await c.isValidPath(large!), true);
    const after = ourStdioDaemons();
    assert.ok(after.length >= 1 && after.every((p) => !before.includes(p)), 'a new daemon serves');
  } finally {
    await c.close();
  }
  await sleep(100);
  assert.deepEqual(ourStdioDaemons(), [], 'close() leaves no daemon behind');
});

test('transport choice: NIX_DAEMON_SOCKET_PATH first; no socket at all falls back to stdio', async () => {
  const proxy = await startProxy();
  try {
    const viaEnv = await DaemonClient.open({ env: { NIX_DAEMON_SOCKET_PATH: proxy.path } });
    assert.equal(viaEnv.endpoint, proxy.path);
    await viaEnv.close();

    const empty = mkdtempSync(join(tmpdir(), 'loft-nostate-'));
    const fallback = await DaemonClient.open({
      env: { NIX_DAEMON_SOCKET_PATH: join(empty, 'missing'), NIX_STATE_DIR: empty },
    });
    assert.match(fallback.endpoint, /^nix-daemon --stdio/);
    assert.equal(await fallback.isValidPath((await built)[1]!), true);
    await fallback.close();
  } finally {
    await proxy.close();
  }
});

test('errors a user meets: socket missing (explicit), no socket and no nix-daemon (auto)', async () => {
  const empty = mkdtempSync(join(tmpdir(), 'loft-nostate-'));
  await assert.rejects(
    DaemonClient.open({ transport: 'socket', socketPath: join(empty, 'socket') }),
    (e: unknown) => {
      assert.ok(isLoftError(e, 'DAEMON_SOCKET_MISSING'));
      assert.match(e.message, new RegExp(`${join(empty, 'socket')}: no such socket`));
      assert.match(e.hint ?? '', /systemctl start nix-daemon|NIX_DAEMON_SOCKET_PATH/);
      return true;
    },
  );
  await assert.rejects(
    DaemonClient.open({
      env: { NIX_STATE_DIR: empty },
      stdioCommand: [join(empty, 'nix-daemon'), '--stdio'],
    }),
    (e: unknown) => {
      assert.ok(isLoftError(e, 'DAEMON_SOCKET_MISSING'));
      assert.match(e.message, /no such socket/);
      assert.match(e.message, /is not on PATH/);
      return true;
    },
  );
  await assert.rejects(
    DaemonClient.open({ transport: 'stdio', stdioCommand: [join(empty, 'nix-daemon')] }),
    (e: unknown) => isLoftError(e, 'DAEMON_SPAWN_FAILED'),
  );
});

test('a bad path never reaches the daemon: the same connection keeps working', async () => {
  const [tree] = await built;
  const c = await DaemonClient.open({ maxConnections: 1 });
  try {
    for (const bad of ['/etc/passwd', `${tree}/sub`, '/nix/store/x', '/nix/store/../etc']) {
      await assert.rejects(c.queryPathInfo(bad), (e: unknown) =>
        isLoftError(e, 'STORE_PATH_INVALID'),
      );
      await assert.rejects(c.narFromPath(bad), (e: unknown) =>
        isLoftError(e, 'STORE_PATH_INVALID'),
      );
    }
    assert.equal(await c.isValidPath(tree!), true);
    assert.equal(c.connections, 1);
  } finally {
    await c.close();
  }
});
