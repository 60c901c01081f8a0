import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  backoffDelayMs,
  parseRetryAfter,
  retryDelayMs,
  validateRetryPolicy,
  type RetryPolicy,
} from '../../../src/storage/backoff.js';

const policy: RetryPolicy = {
  maxAttempts: 5,
  baseDelayMs: 100,
  maxDelayMs: 5000,
  maxRetryAfterMs: 30_000,
};

test('full jitter: the delay is uniform in [0, min(max, base * 2^(retry-1))]', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 60 }),
      fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      (retry, r) => {
        const d = backoffDelayMs(retry, policy, r);
        const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1));
        assert.ok(Number.isInteger(d));
        assert.ok(d >= 0 && d <= ceiling, `${d} not in [0, ${ceiling}]`);
      },
    ),
  );
});

test('the ceiling doubles per retry until the cap', () => {
  const top = (retry: number) => backoffDelayMs(retry, policy, 0.999999999);
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 30].map(top), [99, 199, 399, 799, 1599, 3199, 4999, 4999]);
  assert.equal(backoffDelayMs(3, policy, 0), 0);
  assert.equal(backoffDelayMs(3, policy, 0.5), 200);
});

test('Retry-After is a floor on the delay, capped by maxRetryAfterMs', () => {
  assert.equal(retryDelayMs(1, policy, 0, 2000), 2000);
  assert.equal(retryDelayMs(1, policy, 0.5, undefined), 50);
  // A backoff above the server's ask wins.
  assert.equal(retryDelayMs(7, policy, 0.999999999, 1000), 4999);
  // A silly Retry-After cannot stall us longer than the cap.
  assert.equal(retryDelayMs(1, policy, 0, 3_600_000), 30_000);
});

test('parseRetryAfter reads delta-seconds and HTTP dates, and nothing else', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  assert.equal(parseRetryAfter('3', now), 3000);
  assert.equal(parseRetryAfter(' 0 ', now), 0);
  assert.equal(parseRetryAfter('Wed, 01 Jan 2025 00:00:05 GMT', now), 5000);
  assert.equal(parseRetryAfter('Tue, 31 Dec 2024 23:59:00 GMT', now), 0, 'past dates mean now');
  assert.equal(parseRetryAfter(undefined, now), undefined);
  assert.equal(parseRetryAfter('soon', now), undefined);
  assert.equal(parseRetryAfter('1.5', now), undefined);
  assert.equal(parseRetryAfter('-3', now), undefined);
});

test('validateRetryPolicy names the bad field', () => {
  assert.equal(validateRetryPolicy(policy), undefined);
  assert.match(validateRetryPolicy({ ...policy, maxAttempts: 0 }) ?? '', /maxAttempts.*got 0/);
  assert.match(validateRetryPolicy({ ...policy, maxAttempts: 2.5 }) ?? '', /maxAttempts/);
  assert.match(validateRetryPolicy({ ...policy, baseDelayMs: -1 }) ?? '', /baseDelayMs.*-1/);
});
