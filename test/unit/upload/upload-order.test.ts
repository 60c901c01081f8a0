/**
 * Upload order: paths that more levels of dependents wait on start first, big NARs still
 * start early, and every path is in the order exactly once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { levelsAbove, uploadOrder, type OrderNode } from '../../../src/upload/upload-order.js';

const node = (path: string, narSize: number, references: string[] = []): OrderNode => ({
  path,
  narSize,
  references,
});

test('a deep chain uploads bottom first, whatever the sizes of its links', () => {
  const n = 300;
  const chain = Array.from({ length: n }, (_, i) =>
    node(`p${i}`, 900_000 + ((i * 7919) % 1000) * 100, i === 0 ? [] : [`p${i - 1}`, `p${i}`]),
  );
  const shuffled = [...chain].sort((a, b) => b.narSize - a.narSize);
  const order = uploadOrder(shuffled).map((x) => x.path);
  assert.deepEqual(
    order,
    chain.map((x) => x.path),
  );
  assert.equal(levelsAbove(chain).get('p0'), n - 1);
  assert.equal(levelsAbove(chain).get(`p${n - 1}`), 0);
});

test('levels count the longest path of dependents, ignoring outside references', () => {
  // a <- b <- d, a <- c, and d also references c; x is outside the set.
  const nodes = [
    node('a', 1, ['x']),
    node('b', 1, ['a']),
    node('c', 1, ['a']),
    node('d', 1, ['b', 'c', 'x']),
  ];
  const l = levelsAbove(nodes);
  assert.deepEqual(
    ['a', 'b', 'c', 'd'].map((p) => l.get(p)),
    [2, 1, 1, 0],
  );
});

test('a huge NAR at the top still starts before small paths one level deeper', () => {
  const nodes = [node('lib', 1_000_000), node('app', 500_000_000, ['lib']), node('doc', 10_000)];
  assert.deepEqual(
    uploadOrder(nodes).map((x) => x.path),
    ['app', 'lib', 'doc'],
  );
});

test('every path appears once, in a deterministic order for equal ranks', () => {
  const nodes = Array.from({ length: 50 }, (_, i) => node(`q${i % 10}-${i}`, 1000));
  const a = uploadOrder(nodes).map((x) => x.path);
  const b = uploadOrder([...nodes].reverse()).map((x) => x.path);
  assert.equal(new Set(a).size, 50);
  assert.deepEqual(a, b);
});
