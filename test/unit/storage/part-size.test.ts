import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  MAX_PARTS,
  MAX_PART_SIZE,
  MIN_PART_SIZE,
  MiB,
  partSize,
  planCapacity,
  planParts,
} from '../../../src/storage/part-size.js';

const GB = 1e9;

/** Parts needed to hold `total` bytes, and the largest of them. */
function cut(total: number, plan: ReturnType<typeof planParts>) {
  let n = 0;
  let left = total;
  let largest = 0;
  while (left > 0) {
    n++;
    const s = partSize(n, plan);
    largest = Math.max(largest, Math.min(s, left));
    left -= s;
  }
  return { parts: n, largest };
}

test('without a hint: 8 MiB parts, doubling every 1000 parts; 10,000 parts hold >= 500 GB', () => {
  const plan = planParts();
  assert.equal(partSize(1, plan), 8 * MiB);
  assert.equal(partSize(1000, plan), 8 * MiB);
  assert.equal(partSize(1001, plan), 16 * MiB);
  assert.equal(partSize(6000, plan), 256 * MiB);
  assert.ok(planCapacity(plan) >= 500 * GB);
  // 500 GB needs no more than 6000 parts, and 5 GB is all 8 MiB parts (memory stays small).
  assert.ok(cut(500 * GB, plan).parts <= 6000);
  assert.equal(cut(5 * GB, plan).largest, 8 * MiB);
});

test('every plan: parts within S3 limits, nondecreasing, and 10,000 of them hold >= 500 GB', () => {
  fc.assert(
    fc.property(
      fc.option(fc.double({ min: 0, max: 20e12, noNaN: true }), { nil: undefined }),
      fc.option(fc.integer({ min: 0, max: 64 * MiB }), { nil: undefined }),
      (sizeHint, basePartSize) => {
        const plan = planParts({ sizeHint, basePartSize });
        let prev = 0;
        for (let n = 1; n <= MAX_PARTS; n += 97) {
          const s = partSize(n, plan);
          assert.ok(s >= MIN_PART_SIZE && s <= MAX_PART_SIZE, `part ${n}: ${s}`);
          assert.ok(s >= prev, 'nondecreasing');
          prev = s;
        }
        assert.ok(planCapacity(plan) >= 500 * GB);
      },
    ),
    { numRuns: 60 },
  );
});

test('with an accurate hint, the hinted size fits in <= 9000 parts of about hint/9000', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 4e12 }), (hint) => {
      const plan = planParts({ sizeHint: hint });
      const { parts, largest } = cut(hint, plan);
      assert.ok(parts <= 9000, `${parts} parts`);
      assert.ok(largest <= Math.max(8 * MiB, hint / 9000 + MiB), `largest ${largest}`);
    }),
    { numRuns: 200 },
  );
  // A 400 GB NAR: 43 MiB parts, not the 256 MiB the hintless plan would grow to.
  assert.equal(planParts({ sizeHint: 400 * GB }).base, 43 * MiB);
});

test('a hint that is far too low still lets the upload finish within 10,000 parts', () => {
  const plan = planParts({ sizeHint: 10 * MiB });
  assert.equal(plan.base, 8 * MiB);
  assert.ok(cut(600 * GB, plan).parts <= MAX_PARTS);
});
