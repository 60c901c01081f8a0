import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalStore } from '../../../src/store/local-store.js';
import { isLoftError, type ErrorCode } from '../../../src/util/errors.js';

// Bad options are refused before any connection is attempted (the socket path below does
// not exist, so a connection attempt would fail differently).
const nowhere = { transport: 'socket' as const, socketPath: '/nonexistent/loft-test/socket' };

test('bad LocalStore options are refused up front, naming the option and what is expected', async () => {
  const cases: [Record<string, unknown>, ErrorCode, RegExp][] = [
    [
      { pathInfoCacheSize: 0 },
      'STORE_OPTION_INVALID',
      /pathInfoCacheSize: 0; expected a positive integer/,
    ],
    [{ rootsRecycleAfter: 1.5 }, 'STORE_OPTION_INVALID', /rootsRecycleAfter: 1\.5/],
    [{ rootsIdleMs: -1 }, 'STORE_OPTION_INVALID', /rootsIdleMs: -1/],
    [
      { maxConnections: 0 },
      'DAEMON_OPTION_INVALID',
      /maxConnections: 0; expected a positive integer/,
    ],
    [
      { transport: 'tcp' },
      'DAEMON_OPTION_INVALID',
      /transport: "tcp"; expected "auto", "socket" or "stdio"/,
    ],
    [{ socketPath: '' }, 'DAEMON_OPTION_INVALID', /socketPath/],
    [{ storeDir: 'nix/store' }, 'STORE_PATH_INVALID', /store directory/],
  ];
  for (const [opts, code, msg] of cases) {
    await assert.rejects(LocalStore.open({ ...nowhere, ...opts }), (e: unknown) => {
      assert.ok(isLoftError(e, code), `${JSON.stringify(opts)}: ${String(e)}`);
      assert.match(e.message, msg);
      return true;
    });
  }
});

test('a missing socket is reported as such, with the socket path and a hint', async () => {
  await assert.rejects(LocalStore.open(nowhere), (e: unknown) => {
    assert.ok(isLoftError(e, 'DAEMON_SOCKET_MISSING'));
    assert.match(e.message, /\/nonexistent\/loft-test\/socket: no such socket/);
    assert.ok(e.hint);
    return true;
  });
});
