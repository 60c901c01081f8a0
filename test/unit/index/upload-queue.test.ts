import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { LocalIndex } from '../../../src/index/local-index.js';
import { UploadQueue, hashPartOfPath } from '../../../src/index/queue.js';
import { isLoftError } from '../../../src/util/errors.js';
import { hashPart, storePath, tempDir } from './support.js';

const A = 's3://bucket-a?endpoint=http://127.0.0.1:9000';
const B = 's3://bucket-b?endpoint=http://127.0.0.1:9000';

function withQueue(fn: (q: UploadQueue, ix: LocalIndex, dir: string) => void) {
  return () => {
    const dir = tempDir();
    const ix = LocalIndex.open(join(dir, 'cache.db'), A);
    try {
      fn(new UploadQueue(ix, 4242), ix, dir);
    } finally {
      ix.close();
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

const P = (i: number, name = `p${i}`) => storePath(hashPart(i), name);
const delay = (ms: number) => () => ms;

test(
  'a queued path is due at once, claimed by one take, and gone once complete',
  withQueue((q) => {
    assert.deepEqual(q.enqueue([P(1), P(2), P(1)], { source: 'watch', now: 1000 }), {
      added: 2,
      unparked: 0,
    });
    const batch = q.take('live', 10, 1000);
    assert.deepEqual(
      batch.map((e) => e.storePath),
      [P(1), P(2)],
    );
    assert.ok(batch.every((e) => e.claimedBy === 4242 && e.attempts === 0));
    assert.deepEqual(q.take('live', 10, 1000), [], 'claimed rows are not handed out twice');
    assert.equal(q.counts().inProgress, 2);
    q.complete([hashPart(1)]);
    q.release([hashPart(2)]);
    assert.equal(q.get(hashPart(1)), undefined);
    assert.deepEqual(
      q.take('live', 10, 1000).map((e) => e.storePath),
      [P(2)],
    );
  }),
);

test(
  'failures back off, park after the last attempt, and a parked path is never taken',
  withQueue((q) => {
    q.enqueue([P(1), P(2)], { source: 'hook', now: 0 });
    q.take('live', 10, 0);
    const policy = { now: 100, maxAttempts: 3, delayMs: (n: number) => 1000 * n };
    assert.deepEqual(q.fail(hashPart(1), 'boom 1', policy), {
      attempts: 1,
      parked: false,
      nextAttemptAt: 1100,
    });
    q.complete([hashPart(2)]);
    assert.deepEqual(q.take('live', 10, 1099), [], 'not due before its backoff ends');
    assert.equal(q.nextDueAt(), 1100);
    let [e] = q.take('live', 10, 1100);
    assert.equal(e?.storePath, P(1));
    assert.equal(q.fail(hashPart(1), 'boom 2', { ...policy, now: 2000 })?.nextAttemptAt, 4000);
    [e] = q.take('live', 10, 4000);
    const out = q.fail(hashPart(1), 'boom 3\n  hint: do X', { ...policy, now: 5000 });
    assert.deepEqual(out, { attempts: 3, parked: true, nextAttemptAt: undefined });
    const parked = q.get(hashPart(1))!;
    assert.equal(parked.parkedAt, 5000);
    assert.equal(parked.lastError, 'boom 3\n  hint: do X');
    assert.equal(parked.claimedBy, undefined);
    assert.deepEqual(q.take('live', 10, Number.MAX_SAFE_INTEGER), []);
    assert.equal(q.nextDueAt(), undefined, 'a parked row does not keep the worker awake');
    assert.deepEqual(
      { pending: q.counts().pending, parked: q.counts().parked },
      { pending: 0, parked: 1 },
    );
    assert.deepEqual(
      q.listParked(10).map((x) => x.storePath),
      [P(1)],
    );
  }),
);

test(
  'rediscovery unparks with fresh attempts, but never resets a waiting backoff',
  withQueue((q) => {
    q.enqueue([P(1), P(2)], { source: 'watch', now: 0 });
    q.take('live', 10, 0);
    const policy = { now: 0, maxAttempts: 1, delayMs: delay(10) };
    q.fail(hashPart(1), 'bad', policy); // parked at once
    q.fail(hashPart(2), 'bad', { ...policy, maxAttempts: 5, delayMs: delay(60_000) });
    const r = q.enqueue([P(1), P(2)], { source: 'hook', now: 500 });
    assert.deepEqual(r, { added: 0, unparked: 1 });
    const one = q.get(hashPart(1))!;
    assert.deepEqual(
      [one.parkedAt, one.attempts, one.nextAttemptAt, one.source],
      [undefined, 0, 500, 'hook'],
    );
    const two = q.get(hashPart(2))!;
    assert.deepEqual([two.attempts, two.nextAttemptAt], [1, 60_000]);
    assert.deepEqual(
      q.take('live', 10, 500).map((e) => e.storePath),
      [P(1)],
    );
  }),
);

test(
  'live rows go before bulk rows; a scan row rediscovered live moves to the live lane',
  withQueue((q) => {
    q.enqueue([P(1), P(2), P(3)], { source: 'scan', now: 0 });
    q.enqueue([P(4)], { source: 'reconcile', now: 10 });
    assert.deepEqual(
      q.take('live', 10, 100).map((e) => e.storePath),
      [P(4)],
    );
    q.enqueue([P(2)], { source: 'watch', now: 20 });
    const two = q.get(hashPart(2))!;
    assert.deepEqual([two.lane, two.source], ['live', 'watch']);
    assert.deepEqual(
      q.take('live', 10, 100).map((e) => e.storePath),
      [P(2)],
    );
    assert.deepEqual(
      q.take('bulk', 10, 100).map((e) => e.storePath),
      [P(1), P(3)],
    );
    assert.equal(q.pendingOfSource('scan'), 2);
    // A scan never demotes a live row.
    q.enqueue([P(4)], { source: 'scan', now: 30 });
    assert.equal(q.get(hashPart(4))!.lane, 'live');
  }),
);

test(
  'a batch never mixes forced (--force-scan) and index-trusting rows',
  withQueue((q) => {
    q.enqueue([P(1)], { source: 'scan', now: 0 });
    q.enqueue([P(2), P(3)], { source: 'scan', force: true, now: 1 });
    q.enqueue([P(4)], { source: 'scan', now: 2 });
    const first = q.take('bulk', 10, 100);
    assert.deepEqual(
      first.map((e) => [e.storePath, e.force]),
      [
        [P(1), false],
        [P(4), false],
      ],
    );
    const second = q.take('bulk', 10, 100);
    assert.deepEqual(
      second.map((e) => [e.storePath, e.force]),
      [
        [P(2), true],
        [P(3), true],
      ],
    );
    // Forcing an existing row sticks.
    q.release([hashPart(1)]);
    q.enqueue([P(1)], { source: 'scan', force: true, now: 3 });
    assert.equal(q.get(hashPart(1))!.force, true);
  }),
);

test("the queue survives closing and reopening; a dead process's claims are released", () => {
  const dir = tempDir();
  try {
    const file = join(dir, 'cache.db');
    let ix = LocalIndex.open(file, A);
    let q = new UploadQueue(ix, 111);
    q.enqueue([P(1), P(2), P(3)], { source: 'watch', now: 0 });
    q.take('live', 2, 0);
    q.fail(hashPart(3), 'x', { now: 0, maxAttempts: 1, delayMs: delay(0) });
    ix.close(); // "crash" with two rows claimed
    ix = LocalIndex.open(file, A);
    q = new UploadQueue(ix, 222);
    assert.deepEqual(q.take('live', 10, 0), [], 'still claimed by the old process');
    assert.equal(q.releaseAllClaims(), 2);
    assert.deepEqual(
      q.take('live', 10, 0).map((e) => [e.storePath, e.claimedBy]),
      [
        [P(1), 222],
        [P(2), 222],
      ],
    );
    assert.equal(q.get(hashPart(3))!.parkedAt, 0);
    ix.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(
  'parked rows whose path is now in the cache are dropped; pending ones are left to the worker',
  withQueue((q, ix) => {
    q.enqueue([P(1), P(2), P(3)], { source: 'watch', now: 0 });
    q.take('live', 10, 0);
    for (const i of [1, 2]) q.fail(hashPart(i), 'x', { now: 0, maxAttempts: 1, delayMs: delay(0) });
    q.release([hashPart(3)]);
    ix.recordPresent([
      { hashPart: hashPart(1), narinfoTime: 1 },
      { hashPart: hashPart(3), narinfoTime: 1 },
    ]);
    assert.equal(q.dropCachedParked(), 1);
    assert.equal(q.get(hashPart(1)), undefined);
    assert.ok(q.get(hashPart(2))!.parkedAt !== undefined);
    assert.ok(q.get(hashPart(3)) !== undefined);
  }),
);

test(
  'queued paths are marked seen; the seen set is per cache and can forget',
  withQueue((q, _ix, dir) => {
    q.enqueue([P(1)], { source: 'watch', now: 0 });
    q.markSeen([hashPart(2), hashPart(3)]);
    q.complete([hashPart(1)]);
    assert.deepEqual(q.seenHashParts().sort(), [hashPart(1), hashPart(2), hashPart(3)].sort());
    q.unsee([hashPart(2)]);
    assert.equal(q.seenCount(), 2);
    const other = LocalIndex.open(join(dir, 'cache.db'), B);
    try {
      const qb = new UploadQueue(other);
      assert.equal(qb.seenCount(), 0);
      assert.deepEqual(qb.take('live', 10, Number.MAX_SAFE_INTEGER), []);
      assert.equal(qb.counts().pending, 0);
    } finally {
      other.close();
    }
  }),
);

test(
  'counts and listings for --status',
  withQueue((q) => {
    q.enqueue([P(1), P(2), P(3)], { source: 'watch', now: 0 });
    q.enqueue([P(4)], { source: 'scan', now: 0 });
    q.take('live', 1, 0); // P(1) in progress
    q.take('live', 1, 0);
    q.fail(hashPart(2), 'nope', { now: 0, maxAttempts: 5, delayMs: delay(1000) });
    const c = q.counts();
    assert.deepEqual(c, {
      pending: 4,
      inProgress: 1,
      retrying: 1,
      parked: 0,
      bySource: { watch: 3, hook: 0, reconcile: 0, scan: 1 },
    });
    assert.deepEqual(
      q.listPending(10).map((e) => e.storePath),
      [P(1), P(2), P(3), P(4)],
      'in progress, then retrying, then waiting (live lane first)',
    );
  }),
);

test('malformed store paths are refused with INDEX_ARGUMENT', () => {
  assert.equal(hashPartOfPath(P(7)), hashPart(7));
  for (const bad of ['relative/path', '/nix/store/short-x', `/nix/store/${'e'.repeat(32)}`]) {
    assert.throws(
      () => hashPartOfPath(bad),
      (e: unknown) => isLoftError(e, 'INDEX_ARGUMENT'),
    );
  }
});
