import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BufferPool, MemoryBudget } from '../../../src/storage/memory-budget.js';

const tick = () => new Promise((r) => setImmediate(r));

test('grants up to the capacity, then queues until bytes come back', async () => {
  const b = new MemoryBudget(100);
  const a = await b.acquire(60);
  const c = await b.acquire(40);
  let granted = false;
  const pending = b.acquire(10).then((l) => {
    granted = true;
    return l;
  });
  await tick();
  assert.equal(granted, false);
  assert.equal(b.inUse, 100);
  c.release();
  const d = await pending;
  assert.equal(granted, true);
  assert.equal(b.inUse, 70);
  a.release();
  d.release();
  d.release(); // idempotent
  assert.equal(b.inUse, 0);
  assert.equal(b.peak, 100);
});

test('first come, first served: a big request is not overtaken by small ones', async () => {
  const b = new MemoryBudget(100);
  const a = await b.acquire(50);
  const order: string[] = [];
  const big = b.acquire(80).then((l) => (order.push('big'), l));
  const small = b.acquire(10).then((l) => (order.push('small'), l));
  await tick();
  assert.deepEqual(order, [], 'small waits behind big although it would fit');
  a.release();
  const [bl, sl] = await Promise.all([big, small]);
  assert.deepEqual(order, ['big', 'small']);
  assert.equal(b.inUse, 90);
  bl.release();
  sl.release();
});

test('a request larger than the budget is granted alone, never alongside others', async () => {
  const b = new MemoryBudget(100);
  const a = await b.acquire(10);
  let granted = false;
  const huge = b.acquire(250).then((l) => ((granted = true), l));
  await tick();
  assert.equal(granted, false);
  a.release();
  const h = await huge;
  assert.equal(b.inUse, 250);
  let next = false;
  const after = b.acquire(1).then((l) => ((next = true), l));
  await tick();
  assert.equal(next, false, 'nothing joins an oversized grant');
  h.release();
  (await after).release();
  assert.equal(b.peak, 250);
});

test('shrink gives back what a short part did not use', async () => {
  const b = new MemoryBudget(100);
  const a = await b.acquire(80);
  a.shrink(30);
  assert.equal(a.bytes, 30);
  assert.equal(b.inUse, 30);
  const c = await b.acquire(70);
  a.release();
  c.release();
  assert.equal(b.inUse, 0);
});

test('an aborted wait leaves the queue and lets those behind it through', async () => {
  const b = new MemoryBudget(100);
  const a = await b.acquire(90);
  const ctrl = new AbortController();
  const blocked = b.acquire(50, ctrl.signal);
  const behind = b.acquire(10);
  ctrl.abort(new Error('stop'));
  await assert.rejects(blocked, /stop/);
  const l = await behind;
  assert.equal(b.inUse, 100);
  assert.equal(b.waiting, 0);
  a.release();
  l.release();
});

test('the buffer pool reuses part buffers and keeps granted plus idle within the budget', async () => {
  const budget = new MemoryBudget(100);
  const pool = new BufferPool(budget, 30);
  const l1 = await budget.acquire(40);
  const b1 = pool.take(40);
  pool.give(b1);
  l1.release();
  assert.equal(pool.idleBytes, 40);
  const l2 = await budget.acquire(40);
  assert.equal(pool.take(40), b1, 'same buffer back');
  assert.equal(pool.allocations, 1);
  // 40 granted + 40 idle fits; a third idle buffer would not.
  const l3 = await budget.acquire(40);
  const b3 = pool.take(40);
  pool.give(b3);
  l3.release();
  assert.equal(pool.idleBytes, 40);
  const l4 = await budget.acquire(20);
  const b4 = pool.take(20);
  pool.give(b4);
  l4.release();
  assert.equal(pool.idleBytes, 60, 'now 40 granted + 60 idle = 100');
  // A new size is allocated only after idle buffers make room for it.
  const l5 = await budget.acquire(50);
  pool.take(50);
  assert.ok(budget.inUse + pool.idleBytes <= 100, `${budget.inUse} + ${pool.idleBytes}`);
  l5.release();
  l2.release();
  // Views of a bigger buffer are not pooled.
  pool.give(Buffer.alloc(64).subarray(0, 10));
  assert.ok(pool.idleBytes <= 100);
});

test('idle buffers are dropped after the idle time', async () => {
  const budget = new MemoryBudget(100);
  const pool = new BufferPool(budget, 20);
  pool.give(Buffer.allocUnsafeSlow(10));
  assert.equal(pool.idleBytes, 10);
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(pool.idleBytes, 0);
});
