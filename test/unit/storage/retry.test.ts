import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RetryExhausted, withRetry, type RetryVerdict } from '../../../src/storage/retry.js';
import type { RetryPolicy } from '../../../src/storage/backoff.js';

const policy: RetryPolicy = {
  maxAttempts: 4,
  baseDelayMs: 100,
  maxDelayMs: 1000,
  maxRetryAfterMs: 10_000,
};

class Transient extends Error {
  constructor(readonly retryAfterMs?: number) {
    super('transient');
  }
}
const classify = (e: unknown): RetryVerdict =>
  e instanceof Transient
    ? { retry: true, reason: 'transient', retryAfterMs: e.retryAfterMs }
    : { retry: false, reason: 'permanent' };

function recorder() {
  const sleeps: number[] = [];
  return { sleeps, sleep: async (ms: number) => void sleeps.push(ms) };
}

test('retries transient failures, then returns the result', async () => {
  const { sleeps, sleep } = recorder();
  const attempts: number[] = [];
  const r = await withRetry(policy, { classify, sleep, random: () => 0.5 }, async (n) => {
    attempts.push(n);
    if (n < 3) throw new Transient();
    return 'ok';
  });
  assert.equal(r, 'ok');
  assert.deepEqual(attempts, [1, 2, 3]);
  assert.deepEqual(sleeps, [50, 100], 'half of 100 ms, then of 200 ms');
});

test('gives up after maxAttempts with the last error and the count', async () => {
  const { sleeps, sleep } = recorder();
  let calls = 0;
  const err = await withRetry(policy, { classify, sleep }, async () => {
    calls++;
    throw new Transient();
  }).catch((e: unknown) => e);
  assert.ok(err instanceof RetryExhausted);
  assert.equal(err.attempts, 4);
  assert.ok(err.lastError instanceof Transient);
  assert.equal(calls, 4);
  assert.equal(sleeps.length, 3);
});

test('a permanent error fails at once', async () => {
  const { sleeps, sleep } = recorder();
  let calls = 0;
  const err = await withRetry(policy, { classify, sleep }, async () => {
    calls++;
    throw new Error('403');
  }).catch((e: unknown) => e);
  assert.ok(err instanceof RetryExhausted);
  assert.equal(err.attempts, 1);
  assert.equal(calls, 1);
  assert.deepEqual(sleeps, []);
});

test('Retry-After from the classifier sets the wait', async () => {
  const { sleeps, sleep } = recorder();
  const retried: { attempt: number; delayMs: number }[] = [];
  await withRetry(
    policy,
    { classify, sleep, random: () => 0, onRetry: (i) => retried.push(i) },
    async (n) => {
      if (n === 1) throw new Transient(1500);
      return n;
    },
  );
  assert.deepEqual(sleeps, [1500]);
  assert.deepEqual(retried, [{ attempt: 1, delayMs: 1500, reason: 'transient' }]);
});

test('an abort during the backoff wait stops retrying with the abort reason', async () => {
  const ctrl = new AbortController();
  const reason = new Error('stop');
  let calls = 0;
  const p = withRetry(
    { ...policy, baseDelayMs: 60_000, maxDelayMs: 60_000 },
    { classify, signal: ctrl.signal, random: () => 0.9 },
    async () => {
      calls++;
      throw new Transient();
    },
  );
  setTimeout(() => ctrl.abort(reason), 20);
  const t0 = Date.now();
  await assert.rejects(p, (e) => e === reason);
  assert.ok(Date.now() - t0 < 5000, 'did not wait out the backoff');
  assert.equal(calls, 1);
});
