import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodeNar } from '../../../src/nix/nar-encode.js';
import { NarParser, parseNar, type NarPath } from '../../../src/nix/nar-parse.js';
import { NarSourceChangedError, NarUnsupportedFileError } from '../../../src/nix/errors.js';
import { nar, type Tree } from './nar-bytes.js';
import { collectNar, dir, file, key, link, MemorySource, type MemNode } from './memory-source.js';

/** The same tree in the test builder's form, entries sorted by bytes: an independent oracle. */
function toTree(n: MemNode): Tree {
  switch (n.type) {
    case 'regular':
      return { type: 'regular', contents: n.contents, executable: ((n.mode ?? 0) & 0o100) !== 0 };
    case 'symlink':
      return { type: 'symlink', target: n.target };
    case 'directory':
      return {
        type: 'directory',
        entries: [...n.entries.entries()]
          .map(([k, v]) => [Buffer.from(k, 'latin1'), v] as [Buffer, MemNode])
          .sort((a, b) => Buffer.compare(a[0], b[0]))
          .map(([k, v]) => [k, toTree(v)]),
      };
    default:
      throw new Error('special');
  }
}

const encode = (root: MemNode, opts = {}, useSmall = true) =>
  collectNar(encodeNar(new MemorySource(root, useSmall), Buffer.from('/root'.slice(0, 0)), opts));

const sample = dir({
  'b.txt': file('bee'),
  'a.sh': file('#!/bin/sh\n', true),
  empty: dir({}),
  sub: dir({ deep: dir({ x: file('') }), l1: link('../a.sh'), dangling: link('/nowhere/at/all') }),
  big: file(Buffer.alloc(300_000, 0x61)),
});

test('the encoder writes the same bytes as the hand-framed oracle, sorted by name bytes', async () => {
  for (const useSmall of [true, false]) {
    for (const chunkSize of [64, 4096, 256 * 1024]) {
      const { bytes } = await encode(sample, { chunkSize }, useSmall);
      assert.deepEqual(bytes, nar(toTree(sample)), `chunkSize ${chunkSize} small ${useSmall}`);
    }
  }
});

test('executable means the owner execute bit only', async () => {
  for (const [mode, x] of [
    [0o100, true],
    [0o700, true],
    [0o011, false],
    [0o666, false],
  ] as const) {
    const { bytes } = await encode({ type: 'regular', contents: Buffer.from('x'), mode });
    assert.equal(bytes.includes('executable'), x, mode.toString(8));
  }
});

test('byte order, not UTF-16 order; non-UTF-8 names survive', async () => {
  const names = [
    Buffer.from('\uff5e'),
    Buffer.from('\u{10000}'),
    Buffer.from([0xff, 0x00 + 0x41]),
    Buffer.from('Z'),
    Buffer.from('a'),
  ];
  const root = dir(names.map((n) => [n, file(n)] as [Buffer, MemNode]));
  const { bytes } = await encode(root);
  const seen: Buffer[] = [];
  parseNar(bytes, { visitor: { file: (p: NarPath) => seen.push(p[0]!) } });
  assert.deepEqual(seen, [...names].sort(Buffer.compare));
  assert.deepEqual(
    seen.map((b) => b.toString('hex')),
    ['5a', '61', 'efbd9e', 'f0908080', 'ff41'],
  );
});

test('sockets, fifos and devices are rejected with an error naming the path', async () => {
  for (const [type, re] of [
    ['socket', /it is a socket/],
    ['fifo', /named pipe/],
    ['character-device', /character device/],
    ['block-device', /block device/],
  ] as const) {
    const root = dir({ ok: file('x'), sub: dir({ bad: { type } }) });
    await assert.rejects(
      encode(root),
      (e: Error) =>
        e instanceof NarUnsupportedFileError &&
        e.code === 'NAR_UNSUPPORTED_FILE' &&
        e.path === '/sub/bad' &&
        re.test(e.message) &&
        /regular files, directories and symlinks/.test(e.hint ?? ''),
    );
  }
});

test('a file that shrinks or grows while read is an error, not a corrupt NAR, read in chunks or in place', async () => {
  const shrunk: MemNode = { type: 'regular', contents: Buffer.alloc(10), lieSize: 12 };
  const grew: MemNode = { type: 'regular', contents: Buffer.alloc(200_000), lieSize: 100_000 };
  const shrunkLarge: MemNode = { ...grew, contents: Buffer.alloc(100_000), lieSize: 120_000 };
  for (const [node, re] of [
    [shrunk, /has 10 bytes, but 12 when listed/],
    [grew, /grew beyond the 100000 bytes/],
    [{ ...shrunk, lieSize: 8 }, /grew beyond the 8 bytes/],
    [shrunkLarge, /has 100000 bytes, but 120000 when listed/],
  ] as const) {
    for (const useSmall of [true, false]) {
      for (const into of [undefined, Buffer.alloc(300_000)]) {
        const src = new MemorySource(dir({ f: node }), useSmall);
        await assert.rejects(
          collectNar(encodeNar(src, Buffer.alloc(0), { into })),
          (e: Error) => e instanceof NarSourceChangedError && re.test(e.message),
        );
        // Files over the small-file size are read in place when there is a buffer.
        const large = (node as { lieSize: number }).lieSize > 64 * 1024;
        assert.equal(src.intoReads, into !== undefined && large ? 1 : 0);
      }
    }
  }
});

test('bad names or duplicates from the source are rejected', async () => {
  for (const names of [
    [Buffer.from('a'), Buffer.from('a')],
    [Buffer.from('.')],
    [Buffer.from('a/b')],
    [Buffer.from('')],
  ]) {
    const root: MemNode = {
      type: 'directory',
      entries: new Map([['a', file('')]]),
      rawNames: names,
    };
    await assert.rejects(encode(root), NarUnsupportedFileError);
  }
});

test('small writes are coalesced into full chunks; large file data passes through uncopied', async () => {
  const many = dir(
    Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`f${i}`, file(`content ${i}`)])),
  );
  const { chunks } = await encode(many, { chunkSize: 4096 });
  assert.ok(chunks.length > 5);
  assert.ok(
    chunks.slice(0, -1).every((c) => c.length === 4096),
    'all but the last chunk are full',
  );

  const bigNode: MemNode = {
    type: 'regular',
    contents: Buffer.alloc(1 << 20, 1),
    chunk: 128 * 1024,
  };
  const src = new MemorySource(dir({ big: bigNode }));
  const out = await collectNar(encodeNar(src, Buffer.alloc(0), { chunkSize: 64 * 1024 }));
  for (const c of src.seenChunks)
    assert.ok(out.chunks.includes(c), 'source chunk handed on as the same buffer');
});

test('into a buffer the NAR fits: the oracle bytes, every chunk a view of that buffer, large files read in place', async () => {
  const expected = nar(toTree(sample));
  const into = Buffer.alloc(expected.length);
  const src = new MemorySource(sample);
  const { bytes, chunks } = await collectNar(encodeNar(src, Buffer.alloc(0), { into }));
  assert.deepEqual(bytes, expected);
  assert.deepEqual(into, expected);
  let at = 0;
  for (const c of chunks) {
    assert.equal(c.buffer, into.buffer, 'a chunk outside the buffer');
    assert.equal(c.byteOffset, into.byteOffset + at, 'a chunk not at its offset in the NAR');
    at += c.length;
  }
  assert.equal(src.intoReads, 1, 'the 300 KB file is read in place');
  assert.equal(src.reads, 0);
});

test('into a buffer smaller than the NAR: the oracle bytes, the start in the buffer, the rest in chunks of their own', async () => {
  const expected = nar(toTree(sample));
  for (const size of [1, 100, 150_000, expected.length - 1]) {
    for (const chunkSize of [64, 4096]) {
      const into = Buffer.alloc(size);
      const { bytes } = await collectNar(
        encodeNar(new MemorySource(sample), Buffer.alloc(0), { into, chunkSize }),
      );
      assert.deepEqual(bytes, expected, `into ${size}, chunkSize ${chunkSize}`);
      assert.deepEqual(into, expected.subarray(0, size), `into ${size}, chunkSize ${chunkSize}`);
    }
  }
});

test('backpressure: a consumer that stops pulling stops the reading', async () => {
  const huge: MemNode = { type: 'regular', contents: Buffer.alloc(64 << 20), chunk: 64 * 1024 };
  const src = new MemorySource(dir({ huge }));
  const gen = encodeNar(src, Buffer.alloc(0), { chunkSize: 64 * 1024 });
  let got = 0;
  for await (const c of gen) {
    got += c.length;
    if (got > 1 << 20) break;
  }
  assert.ok(
    src.chunksProduced <= 20,
    `read ${src.chunksProduced} chunks of 1024 for ~1 MiB consumed`,
  );
});

test('read-ahead of small files is bounded', async () => {
  const many = dir(
    Object.fromEntries(
      Array.from({ length: 200 }, (_, i) => [
        `f${String(i).padStart(3, '0')}`,
        file('x'.repeat(100)),
      ]),
    ),
  );
  const src = new MemorySource(many);
  const gen = encodeNar(src, Buffer.alloc(0), { chunkSize: 64, readAhead: 4, smallFileSize: 100 });
  let pulls = 0;
  for await (const _ of gen) {
    if (++pulls === 20) break;
  }
  assert.ok(
    src.smallReads > 0 && src.smallReads <= 20 + 4,
    `${src.smallReads} small reads after 20 pulls`,
  );
});

// A fast-check arbitrary for trees: names are arbitrary non-empty byte strings without "/"
// and NUL, not "." or ".."; contents arbitrary bytes.
const nameArb = fc
  .uint8Array({ minLength: 1, maxLength: 12 })
  .map((b) => Buffer.from(b.map((c) => (c === 0 || c === 0x2f ? 0x61 : c))))
  .filter((b) => !b.equals(Buffer.from('.')) && !b.equals(Buffer.from('..')));
const leafArb: fc.Arbitrary<MemNode> = fc.oneof(
  fc
    .record({ c: fc.uint8Array({ maxLength: 3000 }), x: fc.boolean() })
    .map(({ c, x }) => file(Buffer.from(c), x)),
  fc
    .uint8Array({ minLength: 1, maxLength: 60 })
    .map((t) => link(Buffer.from(t.map((c) => (c === 0 ? 1 : c))))),
);
const treeArb: fc.Arbitrary<MemNode> = fc.letrec<{ node: MemNode }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leafArb,
    fc
      .uniqueArray(fc.tuple(nameArb, tie('node')), { maxLength: 6, selector: ([n]) => key(n) })
      .map((es) => dir(es)),
  ),
})).node;

/** Rebuild a MemNode-like plain tree from parser events. */
function decode(bytes: Buffer): Tree {
  let root: Tree | undefined;
  const at = (path: NarPath, t: Tree) => {
    if (path.length === 0) {
      root = t;
      return;
    }
    let d = root!;
    for (const p of path.slice(0, -1)) {
      if (d.type !== 'directory') throw new Error('not a dir');
      d = d.entries.find(([n]) => Buffer.from(n).equals(p))![1];
    }
    if (d.type !== 'directory') throw new Error('not a dir');
    d.entries.push([path[path.length - 1]!, t]);
  };
  const data = new Map<string, Buffer[]>();
  parseNar(bytes, {
    visitor: {
      directory: (p) => at(p, { type: 'directory', entries: [] }),
      file: (p, i) => {
        const t: Tree = { type: 'regular', contents: Buffer.alloc(0), executable: i.executable };
        at(p, t);
        data.set(p.map(key).join('/'), []);
      },
      contents: (c, p) => data.get(p.map(key).join('/'))!.push(Buffer.from(c)),
      fileEnd: (p) => {
        let d = root!;
        for (const q of p)
          d = (d as Extract<Tree, { type: 'directory' }>).entries.find(([n]) =>
            Buffer.from(n).equals(q),
          )![1];
        (d as Extract<Tree, { type: 'regular' }>).contents = Buffer.concat(
          data.get(p.map(key).join('/'))!,
        );
      },
      symlink: (p, t) => at(p, { type: 'symlink', target: t }),
    },
  });
  return root!;
}

test('property: encode -> parse gives back the same tree', async () => {
  await fc.assert(
    fc.asyncProperty(treeArb, fc.integer({ min: 64, max: 8192 }), async (tree, chunkSize) => {
      const { bytes } = await encode(tree, { chunkSize, smallFileSize: 1000 });
      assert.deepEqual(bytes, nar(toTree(tree)));
      const back = decode(bytes);
      const norm = (t: Tree): Tree =>
        t.type === 'regular'
          ? { type: 'regular', contents: Buffer.from(t.contents), executable: !!t.executable }
          : t.type === 'symlink'
            ? { type: 'symlink', target: Buffer.from(t.target) }
            : { type: 'directory', entries: t.entries.map(([n, c]) => [Buffer.from(n), norm(c)]) };
      assert.deepEqual(norm(back), norm(toTree(tree)));
    }),
    { numRuns: 150 },
  );
});

/** Parser events as comparable strings. */
function events(feed: (p: NarParser) => void): string[] {
  const out: string[] = [];
  const at = (p: NarPath) => p.map((b) => b.toString('hex')).join('/');
  const parser = new NarParser({
    visitor: {
      directory: (p) => out.push(`d ${at(p)}`),
      directoryEnd: (p) => out.push(`/d ${at(p)}`),
      file: (p, i) => out.push(`f ${at(p)} ${i.size} ${i.executable} ${i.narOffset}`),
      contents: (c) => out.push(`c ${c.toString('hex')}`),
      fileEnd: (p) => out.push(`/f ${at(p)}`),
      symlink: (p, t) => out.push(`l ${at(p)} ${t.toString('hex')}`),
    },
  });
  feed(parser);
  parser.end();
  // Contents may arrive in different pieces; join adjacent ones before comparing.
  return out.reduce<string[]>((acc, e) => {
    const last = acc[acc.length - 1];
    if (e.startsWith('c ') && last?.startsWith('c ')) acc[acc.length - 1] = last + e.slice(2);
    else acc.push(e);
    return acc;
  }, []);
}

test('property: random trees parsed in random chunk splits, with trailing bytes, give the same events and the exact length', async () => {
  await fc.assert(
    fc.asyncProperty(
      treeArb,
      fc.array(fc.nat(), { maxLength: 12 }),
      fc.uint8Array({ minLength: 0, maxLength: 24 }),
      async (tree, cutSeeds, trailing) => {
        const { bytes } = await encode(tree);
        const whole = events((p) => assert.equal(p.push(bytes), bytes.length));
        const input = Buffer.concat([bytes, trailing]);
        const cuts = [
          ...new Set([0, ...cutSeeds.map((c) => c % (input.length + 1)), input.length]),
        ].sort((a, b) => a - b);
        let consumed = 0;
        const split = events((p) => {
          for (let k = 0; k + 1 < cuts.length; k++) {
            const chunk = input.subarray(cuts[k], cuts[k + 1]);
            const used = p.push(chunk);
            consumed += used;
            assert.ok(used === chunk.length || p.done, 'short only at the end of the NAR');
          }
        });
        assert.equal(consumed, bytes.length);
        assert.deepEqual(split, whole);
      },
    ),
    { numRuns: 150 },
  );
});
