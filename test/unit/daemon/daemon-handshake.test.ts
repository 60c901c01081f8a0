import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DaemonConnection } from '../../../src/daemon/connection.js';
import { isLoftError } from '../../../src/util/errors.js';
import {
  LAST,
  MAGIC1,
  NEXT,
  ScriptedDaemon,
  clientPostHello,
  daemonHello,
  daemonPostHandshake,
  hex,
  str,
  strs,
  u64,
} from './scripted.js';

/** The client's hello: magic and the version it advertises (1.38). */
const CLIENT_HELLO = Buffer.concat([MAGIC1, u64(0x126)]);

test('handshake with a Nix 2.8 daemon (1.34): the exact bytes from nix-formats.md', async () => {
  const d = new ScriptedDaemon();
  const opening = DaemonConnection.open(d.transport());
  await d.expect(hex('6378696e00000000 2601000000000000'), 'client hello');
  d.send(hex('6f69786400000000 2201000000000000'));
  await d.expect(hex('0000000000000000 0000000000000000'), 'obsolete affinity and reserveSpace');
  d.send(hex('0500000000000000 322e382e30000000'), hex('73746c6100000000'));
  const conn = await opening;
  assert.deepEqual(conn.info, {
    version: 0x122,
    daemonProtocol: 0x122,
    daemonNixVersion: '2.8.0',
    trusted: undefined,
    daemonFeatures: [],
  });
  assert.equal(d.pending().length, 0, 'nothing else written');
  conn.destroy();
});

test('handshake at 1.21 (Nix 2.3): no version string, no trust flag', async () => {
  const d = new ScriptedDaemon();
  const opening = DaemonConnection.open(d.transport());
  await d.expect(CLIENT_HELLO);
  d.send(daemonHello(21));
  await d.expect(clientPostHello(21));
  d.send(LAST);
  const conn = await opening;
  assert.equal(conn.info.version, 0x115);
  assert.equal(conn.info.daemonNixVersion, undefined);
  assert.equal(conn.info.trusted, undefined);
  conn.destroy();
});

for (const [minor, flag, trusted] of [
  [35, 1, true],
  [37, 2, false],
  [37, 0, undefined],
] as const) {
  test(`handshake at 1.${minor}: trust flag ${flag} means ${trusted}`, async () => {
    const d = new ScriptedDaemon();
    const opening = DaemonConnection.open(d.transport());
    await d.expect(CLIENT_HELLO);
    d.send(daemonHello(minor));
    await d.expect(clientPostHello(minor));
    d.send(daemonPostHandshake(minor, { nixVersion: '2.21.0', trust: flag }));
    const conn = await opening;
    assert.equal(conn.info.version, 0x100 | minor);
    assert.equal(conn.info.daemonNixVersion, '2.21.0');
    assert.equal(conn.info.trusted, trusted);
    conn.destroy();
  });
}

test('handshake at 1.38: the client sends its (empty) feature list before it reads the daemon’s', async () => {
  const d = new ScriptedDaemon();
  const opening = DaemonConnection.open(d.transport());
  await d.expect(CLIENT_HELLO);
  d.send(daemonHello(38));
  // A 1.38 daemon reads the client's features before it sends its own: the client must
  // not wait for them first (this step would time out).
  await d.expect(u64(0), 'client features: empty list');
  d.send(strs(['hash-mismatch-status', 'other']));
  await d.expect(Buffer.concat([u64(0), u64(0)]), 'obsolete affinity and reserveSpace');
  d.send(str('2.24.1'), u64(1), LAST);
  const conn = await opening;
  assert.deepEqual(conn.info, {
    version: 0x126,
    daemonProtocol: 0x126,
    daemonNixVersion: '2.24.1',
    trusted: true,
    daemonFeatures: ['hash-mismatch-status', 'other'],
  });
  conn.destroy();
});

test('a daemon newer than 1.38 is spoken to at 1.38', async () => {
  const d = new ScriptedDaemon();
  const opening = DaemonConnection.open(d.transport());
  await d.expect(CLIENT_HELLO);
  d.send(daemonHello(40));
  await d.expect(clientPostHello(38));
  d.send(daemonPostHandshake(38, { nixVersion: '3.0' }));
  const conn = await opening;
  assert.equal(conn.info.version, 0x126);
  assert.equal(conn.info.daemonProtocol, 0x128);
  conn.destroy();
});

test('log lines during the handshake are consumed and reported', async () => {
  const d = new ScriptedDaemon();
  const events: unknown[] = [];
  const opening = DaemonConnection.open(d.transport(), { onEvent: (e) => events.push(e) });
  await d.expect(CLIENT_HELLO);
  d.send(daemonHello(34));
  await d.expect(clientPostHello(34));
  d.send(str('2.8.0'), u64(NEXT), str('warning: \u001b[35;1mhello\u001b[0m\n'), LAST);
  const conn = await opening;
  assert.deepEqual(events, [{ kind: 'log', text: 'warning: hello' }]);
  conn.destroy();
});

for (const [version, shown] of [
  [0x114, '1.20'],
  [0x10a, '1.10'],
  [0x226, '2.38'],
] as const) {
  test(`daemon protocol ${shown} is refused with DAEMON_VERSION_UNSUPPORTED`, async () => {
    const d = new ScriptedDaemon('/run/test.sock');
    const opening = DaemonConnection.open(d.transport());
    d.send(Buffer.concat([hex('6f69786400000000'), u64(version)]));
    await assert.rejects(opening, (e: unknown) => {
      assert.ok(isLoftError(e, 'DAEMON_VERSION_UNSUPPORTED'));
      assert.match(
        e.message,
        new RegExp(`protocol ${shown.replace('.', '\\.')}; Loft needs 1\\.21`),
      );
      assert.match(e.message, /\/run\/test\.sock/);
      assert.match(e.hint ?? '', /Nix to 2\.3 or newer/);
      return true;
    });
    assert.ok(d.destroyed, 'transport destroyed');
  });
}

test('a peer that is not a nix-daemon (wrong magic) is a protocol error', async () => {
  const d = new ScriptedDaemon();
  const opening = DaemonConnection.open(d.transport());
  d.send(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n'));
  await assert.rejects(opening, (e: unknown) => {
    assert.ok(isLoftError(e, 'DAEMON_PROTOCOL'));
    assert.match(e.message, /magic 0x/);
    return true;
  });
});

test('a socket daemon hanging up during the handshake points at allowed-users', async () => {
  const d = new ScriptedDaemon('/nix/var/nix/daemon-socket/socket');
  const opening = DaemonConnection.open(d.transport());
  await d.expect(CLIENT_HELLO);
  d.hangUp();
  await assert.rejects(opening, (e: unknown) => {
    assert.ok(isLoftError(e, 'DAEMON_REJECTED'));
    assert.match(e.message, /closed the connection during the handshake/);
    assert.match(e.hint ?? '', /allowed-users/);
    return true;
  });
});

test('a stdio daemon exiting during the handshake reports its exit status and stderr', async () => {
  const d = new ScriptedDaemon(
    'nix-daemon --stdio (pid 1)',
    'stdio',
    "nix-daemon --stdio exited with status 1; its stderr: error: opening lock file '/nix/var/nix/db/big-lock': Permission denied",
  );
  const opening = DaemonConnection.open(d.transport());
  await d.expect(CLIENT_HELLO);
  d.send(daemonHello(34));
  d.hangUp();
  await assert.rejects(opening, (e: unknown) => {
    assert.ok(isLoftError(e, 'DAEMON_REJECTED'));
    assert.match(e.message, /exited with status 1; its stderr: .*big-lock': Permission denied/);
    assert.match(e.hint ?? '', /nix-daemon --stdio/);
    return true;
  });
});

test('an error the daemon reports during the handshake is surfaced with its message', async () => {
  const d = new ScriptedDaemon();
  const opening = DaemonConnection.open(d.transport());
  await d.expect(CLIENT_HELLO);
  d.send(daemonHello(34));
  await d.expect(clientPostHello(34));
  d.send(
    str('2.8.0'),
    u64(0x63787470),
    str('Error'),
    u64(0),
    str('Error'),
    str('no store for you'),
    u64(0),
    u64(0),
  );
  await assert.rejects(opening, (e: unknown) => {
    assert.ok(isLoftError(e, 'DAEMON_OP_FAILED'));
    assert.match(e.message, /handshake failed: no store for you/);
    return true;
  });
});
