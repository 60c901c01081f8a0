import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Readable } from 'node:stream';
import type { DaemonConnection } from '../../../src/daemon/connection.js';
import { isValidPathOp, queryPathInfoOp } from '../../../src/daemon/ops.js';
import { DaemonPool } from '../../../src/daemon/pool.js';
import { DaemonSocketMissingError } from '../../../src/daemon/errors.js';
import { isLoftError } from '../../../src/util/errors.js';
import {
  LAST,
  autoRespond,
  narOf,
  openScripted,
  u64,
  type Responder,
  type ScriptedDaemon,
} from './scripted.js';

const P = '/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo';
const S = '/nix/store';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A pool whose connections are scripted daemons answering with `respond`. */
function scriptedPool(
  respond: (n: number) => Responder,
  opts: { maxConnections?: number; maxPipeline?: number } = {},
) {
  const daemons: ScriptedDaemon[] = [];
  const conns: DaemonConnection[] = [];
  let opened = 0;
  const pool = new DaemonPool({
    ...opts,
    connect: async () => {
      const { conn, d } = await openScripted(34);
      autoRespond(d, respond(opened++));
      daemons.push(d);
      conns.push(conn);
      return conn;
    },
  });
  return { pool, daemons, conns, opened: () => opened };
}

const yes: Responder = async () => {
  await sleep(5);
  return Buffer.concat([LAST, u64(1)]);
};

test('queries spread over at most maxConnections, each with at most maxPipeline in flight', async () => {
  const { pool, conns } = scriptedPool(() => yes, { maxConnections: 3, maxPipeline: 2 });
  let peak = 0;
  const timer = setInterval(() => {
    for (const c of conns) peak = Math.max(peak, c.pending);
  }, 1);
  const results = await Promise.all(
    Array.from({ length: 30 }, () => pool.run(isValidPathOp(P, S))),
  );
  clearInterval(timer);
  assert.deepEqual(results, Array(30).fill(true));
  assert.equal(conns.length, 3);
  assert.ok(peak <= 2 && peak >= 1, `peak pipeline ${peak}`);
  await pool.close();
});

test('a burst of queries smaller than a few pipelines waits for the open connection instead of opening more', async () => {
  const { pool, conns } = scriptedPool(() => yes, { maxConnections: 3, maxPipeline: 2 });
  const results = await Promise.all(
    Array.from({ length: 12 }, () => pool.run(isValidPathOp(P, S))),
  );
  assert.deepEqual(results, Array(12).fill(true));
  assert.equal(conns.length, 1, 'no connection opened for 10 waiting queries');
  await pool.close();
});

test('a query whose connection breaks is retried once on a new connection', async () => {
  // The first connection hangs up on its first request; the second answers.
  const { pool, opened } = scriptedPool((n) => (n === 0 ? () => 'hang-up' : yes));
  assert.equal(await pool.run(isValidPathOp(P, S)), true);
  assert.equal(opened(), 2);
  await pool.close();
});

test('a query is not retried twice: two broken connections in a row surface the error', async () => {
  const { pool } = scriptedPool(() => () => 'hang-up');
  await assert.rejects(pool.run(queryPathInfoOp(P, S)), (e: unknown) =>
    isLoftError(e, 'DAEMON_CONNECTION_LOST'),
  );
  pool.destroy();
});

test('when no connection can be opened, waiting work fails with the reason; the next call tries again', async () => {
  let attempts = 0;
  const pool = new DaemonPool({
    connect: async () => {
      attempts++;
      if (attempts === 1) throw new DaemonSocketMissingError('/nope', 'no such socket');
      const { conn, d } = await openScripted(34);
      autoRespond(d, yes);
      return conn;
    },
  });
  await assert.rejects(pool.run(isValidPathOp(P, S)), (e: unknown) =>
    isLoftError(e, 'DAEMON_SOCKET_MISSING'),
  );
  assert.equal(await pool.run(isValidPathOp(P, S)), true);
  assert.equal(attempts, 2);
  await pool.close();
});

test('close() drains: running work finishes, new work is refused, connections are ended; idempotent', async () => {
  const { pool, daemons } = scriptedPool(() => yes, { maxConnections: 2 });
  const running = Array.from({ length: 10 }, () => pool.run(isValidPathOp(P, S)));
  await sleep(1);
  const closing = pool.close();
  assert.equal(pool.close(), closing, 'same promise');
  await assert.rejects(pool.run(isValidPathOp(P, S)), (e: unknown) =>
    isLoftError(e, 'DAEMON_CLOSED'),
  );
  assert.deepEqual(await Promise.all(running), Array(10).fill(true));
  await closing;
  assert.ok(daemons.length > 0);
  for (const d of daemons) assert.ok(d.fromClient.writableEnded, 'connection ended');
});

test('destroy() aborts: running work fails with DAEMON_CLOSED; idempotent', async () => {
  const { pool, daemons } = scriptedPool(() => async () => {
    await sleep(1000);
    return Buffer.concat([LAST, u64(1)]);
  });
  const running = pool.run(isValidPathOp(P, S));
  await sleep(20);
  pool.destroy();
  pool.destroy();
  await assert.rejects(running, (e: unknown) => isLoftError(e, 'DAEMON_CLOSED'));
  assert.ok(daemons.every((d) => d.destroyed));
  await pool.close(); // after destroy: resolves, does nothing
});

test('streams never take the last connection, so queries get through while a stream waits', async () => {
  const nar = narOf(Buffer.alloc(4 << 20, 3)); // more than a stream buffers
  const { pool } = scriptedPool(
    () => async (op) => (op === 38 ? Buffer.concat([LAST, nar]) : Buffer.concat([LAST, u64(1)])),
    { maxConnections: 2 },
  );
  const first: Readable = await pool.narFromPath(P);
  // Nobody reads `first` yet; a second stream has to wait for it...
  let secondStarted = false;
  const second = pool.narFromPath(P).then((s) => {
    secondStarted = true;
    return s;
  });
  // ...but a query does not.
  assert.equal(await pool.run(isValidPathOp(P, S)), true);
  await sleep(20);
  assert.equal(secondStarted, false);
  first.resume();
  await new Promise((r) => first.once('end', r));
  const s2 = await second;
  const chunks: Buffer[] = [];
  for await (const c of s2) chunks.push(c as Buffer);
  assert.deepEqual(Buffer.concat(chunks), nar);
  await pool.close();
});
