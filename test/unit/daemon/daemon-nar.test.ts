import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { isValidPathOp } from '../../../src/daemon/ops.js';
import { isLoftError } from '../../../src/util/errors.js';
import { Hash } from '../../../src/nix/hash.js';
import { LAST, narOf, openScripted, str, u64 } from './scripted.js';

const P = '/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo';

async function collect(s: Readable): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of s) out.push(c as Buffer);
  return Buffer.concat(out);
}

test('NarFromPath: the NAR ends where the parser says; the next reply in the same chunk is kept', async () => {
  const { conn, d } = await openScripted(34);
  const { stream, done } = conn.narFromPath(P);
  const next = conn.call(isValidPathOp(P, '/nix/store'));
  await d.expect(Buffer.concat([u64(38), str(P), u64(1), str(P)]));
  const nar = narOf('hi\n');
  assert.equal(nar.length, 120);
  assert.equal(
    createHash('sha256').update(nar).digest('hex'),
    Hash.parse('sha256:1xmr8jicvzszfzpz46g37mlpvbzjl2wpwvl2b05psipssyp1sm8h').toHex(),
    'the NAR from nix-formats.md',
  );
  d.send(LAST, nar, LAST, u64(1));
  assert.deepEqual(await collect(stream), nar);
  await done;
  assert.equal(await next, true);
  conn.destroy();
});

test('NarFromPath: a NAR arriving one byte at a time is streamed whole', async () => {
  const { conn, d } = await openScripted(34);
  const { stream } = conn.narFromPath(P);
  const nar = narOf(Buffer.alloc(1000, 7));
  const all = Buffer.concat([LAST, nar, LAST, u64(0)]);
  const next = conn.call(isValidPathOp(P, '/nix/store'));
  const got = collect(stream);
  for (let i = 0; i < all.length; i++) {
    d.send(all.subarray(i, i + 1));
    if (i % 64 === 0) await new Promise((r) => setImmediate(r));
  }
  assert.deepEqual(await got, nar);
  assert.equal(await next, false);
  conn.destroy();
});

test('NarFromPath: backpressure: an unread stream stops pulling from the transport', async () => {
  const { conn, d } = await openScripted(34);
  const { stream, done } = conn.narFromPath(P);
  const big = Buffer.alloc(16 << 20, 1);
  const nar = narOf(big);
  const all = Buffer.concat([LAST, nar]);
  // In 64 KiB pieces, as a socket delivers them.
  for (let i = 0; i < all.length; i += 65536) d.send(all.subarray(i, i + 65536));
  await new Promise((r) => setTimeout(r, 100));
  // The client buffers about its stream high-water mark plus the reader's 1 MiB; the rest
  // stays in the transport, which is paused.
  assert.ok(d.toClient.isPaused(), 'transport paused');
  const left = d.toClient.readableLength + d.toClient.writableLength;
  assert.ok(left > 12 << 20, `left in the transport: ${left}`);
  assert.deepEqual(await collect(stream), nar);
  await done;
  conn.destroy();
});

test('NarFromPath: the daemon hanging up mid-NAR errors the stream and fails queued requests', async () => {
  const { conn, d } = await openScripted(34);
  const { stream, done } = conn.narFromPath(P);
  const next = conn.call(isValidPathOp(P, '/nix/store'));
  d.send(LAST, narOf(Buffer.alloc(5000)).subarray(0, 3000));
  setTimeout(() => d.hangUp(), 20);
  await assert.rejects(collect(stream), (e: unknown) => {
    assert.ok(isLoftError(e, 'DAEMON_CONNECTION_LOST'));
    assert.match(e.message, /NAR data/);
    return true;
  });
  await assert.rejects(done);
  await assert.rejects(next, (e: unknown) => isLoftError(e, 'DAEMON_CONNECTION_LOST'));
  assert.equal(conn.isDead, true);
});

test('NarFromPath: a malformed NAR errors the stream and drops the connection', async () => {
  const { conn, d } = await openScripted(34);
  const { stream } = conn.narFromPath(P);
  d.send(LAST, str('not-a-nar'), Buffer.alloc(64));
  await assert.rejects(collect(stream), (e: unknown) => isLoftError(e, 'NAR_INVALID'));
  assert.equal(conn.isDead, true);
  assert.ok(d.destroyed);
});

test('NarFromPath: a daemon error before the NAR fails the stream but keeps the connection', async () => {
  const { conn, d } = await openScripted(34);
  const { stream } = conn.narFromPath(P);
  d.send(
    u64(0x63787470),
    str('Error'),
    u64(0),
    str('Error'),
    str(`path '${P}' is not valid`),
    u64(0),
    u64(0),
  );
  await assert.rejects(
    collect(stream),
    (e: unknown) => isLoftError(e, 'DAEMON_OP_FAILED') && /is not valid/.test(e.message),
  );
  assert.equal(conn.isDead, false);
  const next = conn.call(isValidPathOp(P, '/nix/store'));
  d.send(LAST, u64(1));
  assert.equal(await next, true);
  conn.destroy();
});

test('NarFromPath: destroying the stream half-way drops the connection (the rest is still coming)', async () => {
  const { conn, d } = await openScripted(34);
  const { stream, done } = conn.narFromPath(P);
  d.send(LAST, narOf(Buffer.alloc(4 << 20)));
  await new Promise<void>((r) => stream.once('readable', () => r()));
  stream.destroy();
  await assert.rejects(done, /abandoned/);
  assert.equal(conn.isDead, true);
  assert.ok(d.destroyed);
});
