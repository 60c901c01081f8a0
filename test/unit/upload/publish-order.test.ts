import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PublishOrder, type PublishNode } from '../../../src/upload/publish-order.js';

const node = (path: string, ...references: string[]): PublishNode => ({ path, references });

test('a narinfo waits for its NAR and for every reference narinfo', () => {
  // a <- b <- c (c references b, b references a); d references cached x and itself
  const order = new PublishOrder(
    [node('a'), node('b', 'a'), node('c', 'b', 'a'), node('d', 'x', 'd')],
    (p) => p === 'x',
  );
  assert.deepEqual(order.narStored('c'), []);
  assert.deepEqual(order.narStored('b'), []);
  assert.deepEqual(order.narStored('d'), ['d'], 'self-reference and cached reference do not block');
  assert.deepEqual(order.narStored('a'), ['a']);
  assert.deepEqual(order.published('a'), ['b']);
  assert.deepEqual(order.published('b'), ['c']);
  assert.deepEqual(order.published('c'), []);
});

test('a dependent whose NAR finishes after its references were published is ready at once', () => {
  const order = new PublishOrder([node('a'), node('b', 'a')], () => false);
  order.narStored('a');
  assert.deepEqual(order.published('a'), [], 'b has no NAR yet');
  assert.deepEqual(order.narStored('b'), ['b']);
});

test('a failure dooms every transitive dependent, and only those', () => {
  const order = new PublishOrder(
    [node('a'), node('b', 'a'), node('c', 'b'), node('e'), node('f', 'e', 'c')],
    () => false,
  );
  assert.deepEqual(order.failed('b', 'corrupt').sort(), ['c', 'f']);
  assert.equal(order.failureReason('b'), 'corrupt');
  assert.match(order.failureReason('f')!, /depends on b/);
  assert.ok(!order.isFailed('a') && !order.isFailed('e'));
  order.narStored('a');
  assert.deepEqual(order.published('a'), []);
  assert.deepEqual(order.narStored('c'), [], 'a doomed path is never released');
  assert.deepEqual(order.failed('b', 'again'), [], 'failing twice dooms nothing new');
});

test('a reference that is neither uploaded nor satisfied is a plan bug', () => {
  assert.throws(() => new PublishOrder([node('a', 'missing')], () => false), /plan bug/);
});

test('publishing before the NAR is stored is a plan bug', () => {
  const order = new PublishOrder([node('a')], () => false);
  assert.throws(() => order.published('a'), /plan bug/);
});

test('property: any completion order publishes every path after all its references', () => {
  // Random DAGs (edges only to lower indices), NARs finishing in a random order.
  const dag = fc
    .integer({ min: 1, max: 30 })
    .chain((n) =>
      fc.tuple(
        fc.array(fc.array(fc.nat(), { maxLength: 4 }), { minLength: n, maxLength: n }),
        fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
      ),
    );
  fc.assert(
    fc.property(dag, ([refs, finishOrder]) => {
      const nodes = refs.map((rs, i) =>
        node(`p${i}`, ...(i === 0 ? [] : rs.map((r) => `p${r % i}`))),
      );
      const order = new PublishOrder(nodes, () => false);
      const published: string[] = [];
      const publish = (ready: string[]) => {
        for (const p of ready) {
          published.push(p);
          publish(order.published(p));
        }
      };
      for (const i of finishOrder) publish(order.narStored(`p${i}`));
      assert.equal(published.length, nodes.length);
      const at = new Map(published.map((p, i) => [p, i]));
      for (const n of nodes) for (const r of n.references) assert.ok(at.get(r)! < at.get(n.path)!);
    }),
  );
});

test('stored NARs wait until their references are published; references published is tracked', () => {
  const order = new PublishOrder([node('a'), node('b', 'a'), node('c', 'b')], () => false);
  assert.equal(order.referencesPublished('a'), true);
  assert.equal(order.referencesPublished('b'), false);
  order.narStored('b');
  order.narStored('c');
  assert.equal(order.storedWaiting, 2);
  order.narStored('a');
  assert.equal(order.storedWaiting, 2, 'a is ready, not waiting');
  order.published('a');
  assert.equal(order.storedWaiting, 1, 'b is ready now');
  assert.equal(order.referencesPublished('b'), true);
  assert.equal(order.referencesPublished('c'), false);
  order.failed('b', 'gone');
  assert.equal(order.storedWaiting, 0, 'the doomed c no longer waits');
});
