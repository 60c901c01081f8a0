import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RefGraph, deletionLayers } from '../../../src/prune/graph.js';

// a -> b -> c, a -> c, d -> c, b -> b (self), a -> "x" (not in the cache)
const names = ['a', 'b', 'c', 'd'];
const refs: Record<string, string[]> = { a: ['b', 'c', 'c', 'x'], b: ['c', 'b'], c: [], d: ['c'] };
const g = RefGraph.build(names, (i) => refs[names[i]!]!);
const id = (n: string) => g.index.get(n)!;
const namesOf = (ids: Iterable<number>) => [...ids].map((i) => names[i]).sort();

test('build drops self-references, duplicates and references outside the cache', () => {
  assert.deepEqual(namesOf(g.refs(id('a'))), ['b', 'c']);
  assert.deepEqual(namesOf(g.refs(id('b'))), ['c']);
  assert.equal(g.refs(id('c')).length, 0);
});

test('mark and closureOutside', () => {
  const marks = new Uint8Array(4);
  assert.equal(g.mark([id('b')], marks), 2);
  assert.deepEqual(namesOf(marks.reduce<number[]>((a, m, i) => (m ? [...a, i] : a), [])), [
    'b',
    'c',
  ]);
  assert.equal(g.mark([id('b'), id('c')], marks), 0, 'nothing new');
  assert.deepEqual(namesOf(g.closureOutside(id('a'), marks)), ['a']);
  assert.deepEqual(namesOf(g.closureOutside(id('d'), new Uint8Array(4))), ['c', 'd']);
  assert.deepEqual(g.closureOutside(id('c'), marks), []);
});

test('closureOfNames follows overridden references (a narinfo rewritten since)', () => {
  assert.deepEqual([...g.closureOfNames(['d'])].sort(), ['c', 'd']);
  const over = new Map([['d', ['b']]]);
  assert.deepEqual([...g.closureOfNames(['d'], over)].sort(), ['b', 'c', 'd']);
  assert.deepEqual([...g.closureOfNames(['nope'])], []);
});

test('deletion layers: referrers first; a cycle is reported, not ordered', () => {
  const all = new Uint8Array(4).fill(1);
  const l = deletionLayers(g, all);
  assert.deepEqual(
    l.layers.map((layer) => namesOf(layer)),
    [['a', 'd'], ['b'], ['c']],
  );
  assert.deepEqual(l.unordered, []);
  const cyc = RefGraph.build(['p', 'q', 'r'], (i) => [['q'], ['p'], ['p']][i]!);
  const lc = deletionLayers(cyc, new Uint8Array(3).fill(1));
  assert.deepEqual(
    lc.layers.flat().map((i) => cyc.names[i]),
    ['r'],
  );
  assert.deepEqual(
    lc.unordered.map((i) => cyc.names[i]),
    ['p', 'q'],
  );
});
