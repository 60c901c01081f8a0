import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isValidPathOp } from '../../../src/daemon/ops.js';
import type { StderrEvent } from '../../../src/daemon/stderr.js';
import { processStderr } from '../../../src/daemon/stderr.js';
import { WireReader } from '../../../src/daemon/wire-reader.js';
import { DaemonOpError } from '../../../src/daemon/errors.js';
import { isLoftError } from '../../../src/util/errors.js';
import {
  ERROR,
  LAST,
  NEXT,
  READ,
  RESULT,
  START,
  STOP,
  WRITE,
  openScripted,
  str,
  u64,
} from './scripted.js';

const P = '/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo';

function readerOf(...parts: Buffer[]): WireReader {
  const r = new WireReader(() => new Error('eof'));
  r.push(Buffer.concat(parts));
  r.end();
  return r;
}

const V34 = 0x122;
const V25 = 0x119;

test('every informational stderr message kind is read in full and reported in order', async () => {
  const bigId = (12345n << 32n) | 7n; // activity ids carry the daemon pid in the high half
  const r = readerOf(
    u64(NEXT),
    str('building \u001b[1m/nix/store/x\u001b[0m\n'),
    u64(START),
    u64(bigId),
    u64(3), // level
    u64(105), // type
    str('copying path'),
    u64(2), // fields
    u64(0),
    u64(42),
    u64(1),
    str('/nix/store/abc'),
    u64(0), // parent
    u64(RESULT),
    u64(bigId),
    u64(105), // result type (progress)
    u64(1),
    u64(0),
    u64(2n ** 60n), // an int field too big for a double stays exact
    u64(STOP),
    u64(bigId),
    LAST,
    u64(99), // the reply, left for the caller
  );
  const events: StderrEvent[] = [];
  await processStderr(r, V34, 'Test', { onEvent: (e) => events.push(e), write: () => {} });
  assert.deepEqual(events, [
    { kind: 'log', text: 'building /nix/store/x' },
    {
      kind: 'start-activity',
      id: bigId,
      level: 3,
      type: 105,
      text: 'copying path',
      fields: [42, '/nix/store/abc'],
      parent: 0n,
    },
    { kind: 'result', id: bigId, type: 105, fields: [2n ** 60n] },
    { kind: 'stop-activity', id: bigId },
  ]);
  assert.equal(await r.u64('reply'), 99, 'the reply after STDERR_LAST is untouched');
});

test('STDERR_WRITE goes to the sink; without a sink it is a protocol error', async () => {
  const got: string[] = [];
  await processStderr(readerOf(u64(WRITE), str('chunk'), LAST), V34, 'Test', {
    sink: (b) => got.push(b.toString()),
    write: () => {},
  });
  assert.deepEqual(got, ['chunk']);
  await assert.rejects(
    processStderr(readerOf(u64(WRITE), str('chunk'), LAST), V34, 'Test', { write: () => {} }),
    (e: unknown) => isLoftError(e, 'DAEMON_PROTOCOL') && /STDERR_WRITE/.test(e.message),
  );
});

test('STDERR_READ is answered with a framed string from the source; without one it is a protocol error', async () => {
  const written: Buffer[] = [];
  await processStderr(readerOf(u64(READ), u64(5), LAST), V34, 'Test', {
    source: (len) => Buffer.from('hello world').subarray(0, len),
    write: (b) => written.push(b),
  });
  assert.equal(Buffer.concat(written).toString('hex'), str('hello').toString('hex'));
  await assert.rejects(
    processStderr(readerOf(u64(READ), u64(5), LAST), V34, 'Test', { write: () => {} }),
    (e: unknown) => isLoftError(e, 'DAEMON_PROTOCOL') && /STDERR_READ/.test(e.message),
  );
});

test('STDERR_ERROR (1.26+ format) becomes a DaemonOpError with message, level and traces', async () => {
  const r = readerOf(
    u64(ERROR),
    str('Error'),
    u64(0), // level
    str('Error'), // name, unused
    str("path '\u001b[35;1m/nix/store/x\u001b[0m' is not valid"),
    u64(0), // no position
    u64(2),
    u64(0),
    str('while doing A'),
    u64(0),
    str('while doing B'),
    u64(77),
  );
  await assert.rejects(
    processStderr(r, V34, 'QueryPathInfo', { write: () => {} }),
    (e: unknown) => {
      assert.ok(e instanceof DaemonOpError);
      assert.equal(e.code, 'DAEMON_OP_FAILED');
      assert.equal(e.daemonMessage, "path '/nix/store/x' is not valid");
      assert.equal(e.message, "nix-daemon QueryPathInfo failed: path '/nix/store/x' is not valid");
      assert.deepEqual(e.details, {
        level: 0,
        traces: [{ hint: 'while doing A' }, { hint: 'while doing B' }],
      });
      return true;
    },
  );
  assert.equal(await r.u64('next'), 77, 'the error was read in full');
});

test('STDERR_ERROR before 1.26 is (message, status)', async () => {
  const r = readerOf(u64(ERROR), str('out of cheese'), u64(100), u64(5));
  await assert.rejects(processStderr(r, V25, 'IsValidPath', { write: () => {} }), (e: unknown) => {
    assert.ok(e instanceof DaemonOpError);
    assert.equal(e.daemonMessage, 'out of cheese');
    assert.deepEqual(e.details, { status: 100 });
    return true;
  });
  assert.equal(await r.u64('next'), 5);
});

test('malformed stderr messages are protocol errors: unknown type, unknown field type, positions', async () => {
  const cases: [string, Buffer[]][] = [
    ['unknown stderr message type 0x12345678', [u64(0x12345678)]],
    [
      'unknown activity field type 7',
      [u64(START), u64(1), u64(0), u64(0), str(''), u64(1), u64(7)],
    ],
    [
      'error carries a position',
      [u64(ERROR), str('Error'), u64(0), str('Error'), str('m'), u64(1)],
    ],
    ['error type should be "Error"', [u64(ERROR), str('Oops'), u64(0)]],
    [
      'result fields has 5000 items, more than the limit of 4096',
      [u64(RESULT), u64(1), u64(0), u64(5000)],
    ],
  ];
  for (const [msg, parts] of cases) {
    await assert.rejects(
      processStderr(readerOf(...parts), V34, 'Test', { write: () => {} }),
      (e: unknown) => isLoftError(e, 'DAEMON_PROTOCOL') && e.message.includes(msg),
      msg,
    );
  }
});

test('after a daemon error the connection stays usable; after a protocol error it is dropped', async () => {
  const { conn, d } = await openScripted(34);
  const first = conn.call(isValidPathOp(P, '/nix/store'));
  const second = conn.call(isValidPathOp(P, '/nix/store'));
  d.send(u64(ERROR), str('Error'), u64(0), str('Error'), str('boom'), u64(0), u64(0));
  d.send(LAST, u64(1));
  await assert.rejects(first, /boom/);
  assert.equal(await second, true);
  assert.equal(conn.isDead, false);

  const third = conn.call(isValidPathOp(P, '/nix/store'));
  const fourth = conn.call(isValidPathOp(P, '/nix/store'));
  d.send(u64(0xdeadbeef));
  await assert.rejects(third, (e: unknown) => isLoftError(e, 'DAEMON_PROTOCOL'));
  await assert.rejects(fourth, (e: unknown) => isLoftError(e, 'DAEMON_CONNECTION_LOST'));
  assert.equal(conn.isDead, true);
  assert.ok(d.destroyed, 'transport cut');
  await assert.rejects(conn.call(isValidPathOp(P, '/nix/store')), (e: unknown) =>
    isLoftError(e, 'DAEMON_CONNECTION_LOST'),
  );
});
