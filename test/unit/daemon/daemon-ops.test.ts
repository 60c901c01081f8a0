import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  addSignaturesOp,
  addTempRootOp,
  isValidPathOp,
  queryAllValidPathsOp,
  queryPathFromHashPartOp,
  queryPathInfoOp,
  queryValidPathsOp,
} from '../../../src/daemon/ops.js';
import { isLoftError } from '../../../src/util/errors.js';
import { LAST, openScripted, str, strs, u64 } from './scripted.js';

const S = '/nix/store';
const A = '/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo';
const B = '/nix/store/5xd714cbfnkz02h2vbsj4fm03x3f15nf-baz';
const DRV = '/nix/store/0645zdr6hc6jxw1kia1i7lf9dpc55i2m-d.drv';
const HEX = '9f6edb7657365cdc9959e7675ae98dc22316edb4b44d7c41a5ef8756d2319a80';

test('QueryPathInfo: request bytes and a full reply', async () => {
  const { conn, d } = await openScripted(34);
  const p = conn.call(queryPathInfoOp(B, S));
  await d.expect(Buffer.concat([u64(26), str(B)]));
  d.send(
    LAST,
    u64(1),
    str(DRV),
    str(HEX),
    strs([A, B]),
    u64(1795575674),
    u64(160),
    u64(1),
    strs(['k:sig']),
    str('text:sha256:abc'),
  );
  assert.deepEqual(await p, {
    path: B,
    deriver: DRV,
    narHashHex: HEX,
    references: [A, B],
    registrationTime: 1795575674,
    narSize: 160,
    ultimate: true,
    sigs: ['k:sig'],
    ca: 'text:sha256:abc',
  });
  conn.destroy();
});

test('QueryPathInfo of an invalid path answers undefined (valid flag 0)', async () => {
  const { conn, d } = await openScripted(34);
  const p = conn.call(queryPathInfoOp(A, S));
  d.send(LAST, u64(0));
  assert.equal(await p, undefined);
  conn.destroy();
});

test('IsValidPath, QueryPathFromHashPart, QueryAllValidPaths, AddTempRoot, AddSignatures', async () => {
  const { conn, d } = await openScripted(34);
  const valid = conn.call(isValidPathOp(A, S));
  await d.expect(Buffer.concat([u64(1), str(A)]));
  d.send(LAST, u64(1));
  assert.equal(await valid, true);

  const found = conn.call(queryPathFromHashPartOp('vxjiwkjkn7x4079qvh1jkl5pn05j2aw0'));
  await d.expect(Buffer.concat([u64(29), str('vxjiwkjkn7x4079qvh1jkl5pn05j2aw0')]));
  d.send(LAST, str(A));
  assert.equal(await found, A);
  const missing = conn.call(queryPathFromHashPartOp('5xd714cbfnkz02h2vbsj4fm03x3f15nf'));
  await d.expect(Buffer.concat([u64(29), str('5xd714cbfnkz02h2vbsj4fm03x3f15nf')]));
  d.send(LAST, str(''));
  assert.equal(await missing, undefined);

  const all = conn.call(queryAllValidPathsOp());
  await d.expect(u64(23));
  d.send(LAST, strs([A, B]));
  assert.deepEqual(await all, [A, B]);

  const root = conn.call(addTempRootOp(A, S));
  await d.expect(Buffer.concat([u64(11), str(A)]));
  d.send(LAST, u64(1));
  await root;

  const sigs = conn.call(addSignaturesOp(A, ['k:abc'], S));
  await d.expect(Buffer.concat([u64(37), str(A), strs(['k:abc'])]));
  d.send(LAST, u64(1));
  await sigs;
  conn.destroy();
});

test('QueryValidPaths sends the substitute flag from 1.27 on, not before', async () => {
  for (const [minor, tail] of [
    [27, [u64(0)]],
    [26, []],
  ] as const) {
    const { conn, d } = await openScripted(minor);
    const p = conn.call(queryValidPathsOp([A, B], S));
    await d.expect(Buffer.concat([u64(31), strs([A, B]), ...tail]), `1.${minor} request`);
    d.send(LAST, strs([B]));
    assert.deepEqual(await p, [B]);
    assert.equal(d.pending().length, 0);
    conn.destroy();
  }
});

test('bad paths are refused before anything is written, and the connection lives on', async () => {
  const { conn, d } = await openScripted(34);
  const bad = [
    '/etc/passwd',
    '/nix/store/short-foo',
    `${A}/bin/sh`,
    '/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-foo', // 'e' is not in the nix32 alphabet
    '/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-a b',
  ];
  for (const p of bad) {
    assert.throws(
      () => isValidPathOp(p, S),
      (e: unknown) => isLoftError(e, 'STORE_PATH_INVALID'),
      p,
    );
    assert.throws(
      () => queryPathInfoOp(p, S),
      (e: unknown) => isLoftError(e, 'STORE_PATH_INVALID'),
      p,
    );
    assert.throws(
      () => addTempRootOp(p, S),
      (e: unknown) => isLoftError(e, 'STORE_PATH_INVALID'),
      p,
    );
    assert.throws(
      () => conn.narFromPath(p),
      (e: unknown) => isLoftError(e, 'STORE_PATH_INVALID'),
      p,
    );
  }
  assert.throws(
    () => queryValidPathsOp([A, '/tmp/x'], S),
    (e: unknown) => isLoftError(e, 'STORE_PATH_INVALID'),
  );
  assert.throws(
    () => queryPathFromHashPartOp('abc'),
    (e: unknown) => isLoftError(e, 'STORE_PATH_INVALID'),
  );
  assert.throws(
    () => addSignaturesOp(A, [''], S),
    (e: unknown) => isLoftError(e, 'DAEMON_ARGUMENT_INVALID'),
  );
  // A path from another store directory is outside this one.
  assert.throws(
    () => isValidPathOp('/gnu/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo', S),
    /not in the store directory/,
  );
  await new Promise((r) => setImmediate(r));
  assert.equal(d.pending().length, 0, 'nothing reached the daemon');
  const ok = conn.call(isValidPathOp(A, S));
  d.send(LAST, u64(0));
  assert.equal(await ok, false);
  conn.destroy();
});

test('pipelined requests are written at once and answered in order', async () => {
  const { conn, d } = await openScripted(34);
  const replies = [
    conn.call(isValidPathOp(A, S)),
    conn.call(queryPathFromHashPartOp('vxjiwkjkn7x4079qvh1jkl5pn05j2aw0')),
    conn.call(isValidPathOp(B, S)),
  ];
  await d.expect(
    Buffer.concat([
      u64(1),
      str(A),
      u64(29),
      str('vxjiwkjkn7x4079qvh1jkl5pn05j2aw0'),
      u64(1),
      str(B),
    ]),
  );
  assert.equal(conn.pending, 3);
  // All replies in one chunk.
  d.send(LAST, u64(1), LAST, str(A), LAST, u64(0));
  assert.deepEqual(await Promise.all(replies), [true, A, false]);
  assert.equal(conn.pending, 0);
  conn.destroy();
});
