import { test } from 'node:test';
import assert from 'node:assert/strict';
import { retryDelayMs } from '../../../src/service/backoff.js';

test('retry delays double per attempt with equal jitter, capped', () => {
  const lo = () => 0;
  const hi = () => 1;
  assert.equal(retryDelayMs(1, 1000, 60_000, lo), 500);
  assert.equal(retryDelayMs(1, 1000, 60_000, hi), 1000);
  assert.equal(retryDelayMs(3, 1000, 60_000, hi), 4000);
  assert.equal(retryDelayMs(3, 1000, 60_000, lo), 2000);
  assert.equal(retryDelayMs(30, 1000, 60_000, hi), 60_000);
  assert.equal(retryDelayMs(30, 1000, 60_000, lo), 30_000);
  for (let n = 1; n < 12; n++) {
    const d = retryDelayMs(n, 1000, 3_600_000);
    const nominal = Math.min(3_600_000, 1000 * 2 ** (n - 1));
    assert.ok(d >= nominal / 2 && d <= nominal, `${n}: ${d}`);
  }
});
