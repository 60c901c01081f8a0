import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { topoSort, walkClosure } from '../../../src/store/closure.js';
import type { PathInfo } from '../../../src/store/path-info.js';
import { PathNotValidError } from '../../../src/store/errors.js';

const path = (i: number) => `/nix/store/${String(i).padStart(32, '0')}-p${i}`;

function info(p: string, references: string[]): PathInfo {
  return {
    path: p,
    deriver: undefined,
    narHash: 'sha256:1xmr8jicvzszfzpz46g37mlpvbzjl2wpwvl2b05psipssyp1sm8h',
    narSize: 120,
    references: [...references].sort(),
    registrationTime: 0,
    ultimate: false,
    sigs: [],
    ca: undefined,
  };
}

/** Random DAGs: node i may reference only nodes < i (plus itself). */
const dag = fc
  .integer({ min: 1, max: 60 })
  .chain((n) =>
    fc.tuple(
      fc.constant(n),
      fc.array(fc.tuple(fc.nat(n - 1), fc.nat(n - 1)), { maxLength: n * 3 }),
      fc.array(fc.nat(n - 1), { minLength: 1, maxLength: 3 }),
    ),
  );

function build(n: number, edges: [number, number][]): Map<string, PathInfo> {
  const refs = new Map<number, Set<number>>();
  for (let i = 0; i < n; i++) refs.set(i, new Set(i % 3 === 0 ? [i] : [])); // some self-references
  for (const [a, b] of edges) if (a !== b) refs.get(Math.max(a, b))!.add(Math.min(a, b));
  return new Map([...refs].map(([i, r]) => [path(i), info(path(i), [...r].map(path))]));
}

function reach(all: Map<string, PathInfo>, roots: string[]): Set<string> {
  const seen = new Set<string>();
  const stack = [...roots];
  while (stack.length) {
    const p = stack.pop()!;
    if (seen.has(p)) continue;
    seen.add(p);
    stack.push(...all.get(p)!.references);
  }
  return seen;
}

test('walkClosure finds exactly the reachable paths; topoSort puts references first', async () => {
  await fc.assert(
    fc.asyncProperty(dag, async ([n, edges, rootIdx]) => {
      const all = build(n, edges);
      const roots = rootIdx.map(path);
      let calls = 0;
      const infos = await walkClosure(roots, async (p) => {
        calls++;
        await Promise.resolve();
        return all.get(p)!;
      });
      const expected = reach(all, roots);
      assert.deepEqual(new Set(infos.keys()), expected);
      assert.equal(calls, expected.size, 'each path asked for once');
      const order = topoSort(infos);
      assert.equal(order.length, expected.size);
      const pos = new Map(order.map((i, k) => [i.path, k]));
      for (const i of order) {
        for (const r of i.references) {
          if (r !== i.path) assert.ok(pos.get(r)! < pos.get(i.path)!, `${r} before ${i.path}`);
        }
      }
    }),
    { numRuns: 300 },
  );
});

test('a 5,000-deep chain sorts without recursion limits', () => {
  const infos = new Map<string, PathInfo>();
  for (let i = 0; i < 5000; i++) infos.set(path(i), info(path(i), i > 0 ? [path(i - 1)] : []));
  const order = topoSort(infos);
  assert.deepEqual(
    order.map((i) => i.path),
    Array.from({ length: 5000 }, (_, i) => path(i)),
  );
});

test('walkClosure stops at the first failure and rejects with it', async () => {
  const all = build(10, [
    [1, 0],
    [2, 1],
  ]);
  await assert.rejects(
    walkClosure([path(2)], async (p) => {
      if (p === path(1)) throw new PathNotValidError(p);
      return all.get(p)!;
    }),
    (e: unknown) => e instanceof PathNotValidError && e.path === path(1),
  );
});

test('an empty set of roots has an empty closure', async () => {
  assert.equal((await walkClosure([], async () => assert.fail('not called'))).size, 0);
});

test('walkClosure takes the paths `known` answers for from it (never a root) and walks their references', async () => {
  await fc.assert(
    fc.asyncProperty(
      dag,
      fc.array(fc.nat(59), { maxLength: 30 }),
      async ([n, edges, rootIdx], knownIdx) => {
        const all = build(n, edges);
        const roots = rootIdx.map(path);
        const knownSet = new Set(knownIdx.filter((i) => i < n).map(path));
        const asked: string[] = [];
        const infos = await walkClosure(
          roots,
          async (p) => {
            asked.push(p);
            await Promise.resolve();
            return all.get(p)!;
          },
          (paths) => new Map(paths.filter((p) => knownSet.has(p)).map((p) => [p, all.get(p)!])),
        );
        const expected = reach(all, roots);
        assert.deepEqual(new Set(infos.keys()), expected);
        assert.equal(new Set(asked).size, asked.length, 'each path asked for at most once');
        for (const r of roots) assert.ok(asked.includes(r), `root ${r} asked for`);
        for (const p of asked) {
          assert.ok(roots.includes(p) || !knownSet.has(p), `${p} was known, yet asked for`);
        }
        for (const p of expected) {
          if (!roots.includes(p) && !knownSet.has(p)) assert.ok(asked.includes(p), `${p} asked`);
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('walkClosure rejects with the error `known` throws (the local index failing), not an unhandled one', async () => {
  const all = build(5, [
    [1, 0],
    [2, 1],
  ]);
  const boom = new Error('index unreadable');
  await assert.rejects(
    walkClosure(
      [path(2)],
      async (p) => all.get(p)!,
      () => {
        throw boom;
      },
    ),
    (e: unknown) => e === boom,
  );
});
