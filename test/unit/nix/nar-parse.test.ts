import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { NarParser, parseNar, type NarPath, type NarVisitor } from '../../../src/nix/nar-parse.js';
import { encodeNix32 } from '../../../src/nix/nixbase32.js';
import { isLoftError } from '../../../src/util/errors.js';
import { InvalidNarError } from '../../../src/nix/errors.js';
import { cat, nar, node, sha256, str, u64, type Tree } from './nar-bytes.js';

/** Records parser events as readable lines. */
function recorder(): { visitor: NarVisitor; lines: string[] } {
  const lines: string[] = [];
  const p = (path: NarPath) => '/' + path.map((b) => b.toString('latin1')).join('/');
  let data: Buffer[] = [];
  return {
    lines,
    visitor: {
      directory: (path) => lines.push(`dir ${p(path)}`),
      directoryEnd: (path) => lines.push(`enddir ${p(path)}`),
      file: (path, i) => {
        data = [];
        lines.push(`file ${p(path)} size=${i.size} x=${i.executable} at=${i.narOffset}`);
      },
      contents: (chunk) => data.push(Buffer.from(chunk)),
      fileEnd: (path) =>
        lines.push(`endfile ${p(path)} ${JSON.stringify(Buffer.concat(data).toString('latin1'))}`),
      symlink: (path, t) => lines.push(`link ${p(path)} -> ${t.toString('latin1')}`),
    },
  };
}

const sample: Tree = {
  type: 'directory',
  entries: [
    ['a', { type: 'regular', contents: 'hello' }],
    [
      'b',
      { type: 'directory', entries: [['x', { type: 'regular', contents: '', executable: true }]] },
    ],
    ['c', { type: 'symlink', target: '../nowhere' }],
    ['d', { type: 'directory', entries: [] }],
    ['e', { type: 'regular', contents: 'x'.repeat(20) }],
  ],
};

const invalid = (e: Error) => isLoftError(e, 'NAR_INVALID');

test('the documented "hi\\n" vector: 120 bytes, known narHash, one file event', () => {
  const bytes = nar({ type: 'regular', contents: 'hi\n' });
  assert.equal(bytes.length, 120);
  assert.equal(encodeNix32(sha256(bytes)), '1xmr8jicvzszfzpz46g37mlpvbzjl2wpwvl2b05psipssyp1sm8h');
  const r = recorder();
  assert.equal(parseNar(bytes, { visitor: r.visitor }), 120);
  // magic(24) ( (16) type(16) regular(16) contents(16) size(8) = 96
  assert.deepEqual(r.lines, ['file / size=3 x=false at=96', 'endfile / "hi\\n"']);
});

test('a tree reports every node in order with offsets', () => {
  const bytes = nar(sample);
  const r = recorder();
  parseNar(bytes, { visitor: r.visitor });
  const hello = bytes.indexOf('hello');
  assert.deepEqual(r.lines, [
    'dir /',
    `file /a size=5 x=false at=${hello}`,
    'endfile /a "hello"',
    'dir /b',
    `file /b/x size=0 x=true at=${r.lines[4]!.split('at=')[1]}`,
    'endfile /b/x ""',
    'enddir /b',
    'link /c -> ../nowhere',
    'dir /d',
    'enddir /d',
    `file /e size=20 x=false at=${bytes.indexOf('x'.repeat(20))}`,
    `endfile /e ${JSON.stringify('x'.repeat(20))}`,
    'enddir /',
  ]);
  // The empty file's offset points just after its zero size field.
  const at = Number(r.lines[4]!.split('at=')[1]);
  assert.deepEqual(bytes.subarray(at - 8, at), u64(0));
  assert.deepEqual(bytes.subarray(at, at + 8), str(')').subarray(0, 8));
});

test('push returns the exact count when bytes follow the archive, and 0 afterwards', () => {
  const bytes = nar(sample);
  const trailing = Buffer.from('TRAILING-DATA-1234567');
  const p = new NarParser();
  assert.equal(p.push(Buffer.concat([bytes, trailing])), bytes.length);
  assert.ok(p.done);
  assert.equal(p.offset, bytes.length);
  assert.equal(p.push(trailing), 0);
  assert.equal(p.end(), bytes.length);
});

test('parseNar rejects trailing bytes; end() rejects a truncated archive at every cut', () => {
  const bytes = nar(sample);
  assert.throws(() => parseNar(Buffer.concat([bytes, Buffer.alloc(8)])), /8 bytes follow the end/);
  for (let cut = 0; cut < bytes.length; cut++) {
    const p = new NarParser();
    assert.equal(p.push(bytes.subarray(0, cut)), cut);
    assert.equal(p.done, false);
    assert.throws(
      () => p.end(),
      (e: Error) => isLoftError(e, 'NAR_TRUNCATED'),
      `cut ${cut}`,
    );
  }
});

test('property: random chunk splits give the same events and the exact consumed count', () => {
  const bytes = nar(sample);
  const whole = recorder();
  parseNar(bytes, { visitor: whole.visitor });
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: bytes.length + 16 }), { maxLength: 30 }),
      fc.uint8Array({ minLength: 0, maxLength: 40 }),
      (cuts, trailing) => {
        const input = Buffer.concat([bytes, trailing]);
        const points = [
          ...new Set([0, ...cuts.filter((c) => c <= input.length), input.length]),
        ].sort((a, b) => a - b);
        const r = recorder();
        const p = new NarParser({ visitor: r.visitor });
        let consumed = 0;
        for (let k = 0; k + 1 < points.length; k++) {
          const chunk = input.subarray(points[k], points[k + 1]);
          const used = p.push(chunk);
          consumed += used;
          if (used < chunk.length) assert.ok(p.done);
        }
        p.end();
        assert.equal(consumed, bytes.length);
        assert.deepEqual(r.lines, whole.lines);
      },
    ),
    { numRuns: 300 },
  );
});

test('one byte at a time works', () => {
  const bytes = nar(sample);
  const whole = recorder();
  parseNar(bytes, { visitor: whole.visitor });
  const r = recorder();
  const p = new NarParser({ visitor: r.visitor });
  for (let i = 0; i < bytes.length; i++) assert.equal(p.push(bytes.subarray(i, i + 1)), 1);
  assert.ok(p.done);
  assert.deepEqual(r.lines, whole.lines);
});

function rejectsWith(bytes: Buffer, re: RegExp, atLeast = 0) {
  // Whole, and byte by byte: the same error either way.
  for (const mode of ['whole', 'bytes']) {
    assert.throws(
      () => {
        if (mode === 'whole') parseNar(bytes);
        else {
          const p = new NarParser();
          for (let i = 0; i < bytes.length && !p.done; i++) p.push(bytes.subarray(i, i + 1));
          p.end();
        }
      },
      (e: Error) =>
        e instanceof InvalidNarError && invalid(e) && re.test(e.message) && e.offset >= atLeast,
      `${mode}: ${re}`,
    );
  }
}

test('bad magic is rejected', () => {
  rejectsWith(cat('nix-archive-2', node({ type: 'regular', contents: '' })), /not a Nix archive/);
  rejectsWith(Buffer.from('\x1f\x8b\x08\x00 a gzip file, not a NAR at all'), /not a Nix archive/);
  rejectsWith(
    cat(str('nix-archive-1', 1), node({ type: 'regular', contents: '' })),
    /non-zero padding/,
  );
});

test('non-zero padding is rejected in tokens, names and file contents', () => {
  const good = nar({ type: 'regular', contents: 'hi\n' });
  const bad = Buffer.from(good);
  bad[96 + 3 + 2] = 1; // inside the padding after "hi\n"
  rejectsWith(bad, /non-zero padding after file contents/, 96);
  rejectsWith(
    cat(
      'nix-archive-1',
      '(',
      'type',
      'directory',
      'entry',
      '(',
      'name',
      str('a', 7),
      'node',
      node({ type: 'regular', contents: '' }),
      ')',
      ')',
    ),
    /non-zero padding after entry name/,
  );
  rejectsWith(
    cat('nix-archive-1', str('(', 9), 'type', 'regular', 'contents', str(''), ')'),
    /non-zero padding/,
  );
});

const dir = (...entries: Buffer[]) =>
  cat('nix-archive-1', '(', 'type', 'directory', ...entries, ')');
const entry = (name: string | Buffer, t: Tree = { type: 'regular', contents: '' }) =>
  cat('entry', '(', 'name', str(name), 'node', node(t), ')');

test('unsorted and duplicate entries are rejected; byte order, not UTF-16 order, decides', () => {
  rejectsWith(dir(entry('b'), entry('a')), /not sorted: "a" after "b"/);
  rejectsWith(dir(entry('a'), entry('a')), /duplicate directory entry "a"/);
  // U+FF5E sorts after U+10000 in UTF-16 code units but before it in UTF-8 bytes.
  const low = Buffer.from('\uff5e');
  const high = Buffer.from('\u{10000}');
  assert.ok(Buffer.compare(low, high) < 0 && '\uff5e' > '\u{10000}');
  parseNar(dir(entry(low), entry(high)));
  rejectsWith(dir(entry(high), entry(low)), /not sorted/);
});

test('invalid names are rejected', () => {
  for (const [name, re] of [
    ['', /empty entry name/],
    ['.', /invalid entry name "\."/],
    ['..', /invalid entry name "\.\."/],
    ['a/b', /contains "\/"/],
    ['a\0b', /contains a NUL/],
  ] as const) {
    rejectsWith(dir(entry(name)), re);
  }
  // Non-UTF-8 bytes are fine: names are raw bytes.
  parseNar(dir(entry(Buffer.from([0xff, 0xfe]))));
  parseNar(dir(entry('...'), entry('.a')));
});

test('bad tokens and structure are rejected', () => {
  rejectsWith(cat('nix-archive-1', '(', 'type', 'fifo', ')'), /unknown node type "fifo"/);
  rejectsWith(cat('nix-archive-1', '[', 'type', 'regular'), /expected "\(" to open a node/);
  rejectsWith(cat('nix-archive-1', '(', 'kind', 'regular'), /expected "type"/);
  rejectsWith(
    cat('nix-archive-1', '(', 'type', 'regular', 'executable', 'yes', 'contents', str(''), ')'),
    /executable marker must be ""/,
  );
  rejectsWith(
    cat('nix-archive-1', '(', 'type', 'regular', 'contents', str(''), 'contents', str(''), ')'),
    /expected "\)" after file contents/,
  );
  rejectsWith(
    cat('nix-archive-1', '(', 'type', 'regular', ')'),
    /expected "executable" or "contents"/,
  );
  rejectsWith(
    cat('nix-archive-1', '(', 'type', 'symlink', 'target', str(''), ')'),
    /empty symlink target/,
  );
  rejectsWith(cat('nix-archive-1', '(', 'type', 'symlink', 'target', str('a\0'), ')'), /NUL/);
  rejectsWith(
    dir(cat('entry', '(', 'node', node({ type: 'regular', contents: '' }), ')')),
    /expected "name"/,
  );
  rejectsWith(dir(cat('entry', '(', 'name', str('a'), 'name', str('b'))), /expected "node"/);
  rejectsWith(
    dir(cat('entry', '(', 'name', str('a'), 'node', node({ type: 'regular', contents: '' }), 'x')),
    /expected "\)" to close a directory entry/,
  );
  rejectsWith(dir(cat('other')), /expected "entry" or "\)"/);
});

test('length limits: tokens, names and targets; file sizes beyond 2^53 rejected clearly', () => {
  // A huge token length must fail before any allocation.
  rejectsWith(
    cat('nix-archive-1', u64(1n << 40n)),
    /a token is 1099511627776 bytes long, more than the limit of 64/,
  );
  rejectsWith(
    dir(entry('n'.repeat(1025))),
    /entry name is 1025 bytes long, more than the limit of 1024/,
  );
  parseNar(dir(entry('n'.repeat(1024))));
  rejectsWith(
    cat('nix-archive-1', '(', 'type', 'symlink', 'target', str('t'.repeat(4097)), ')'),
    /symlink target is 4097 bytes/,
  );
  assert.throws(
    () => parseNar(dir(entry('n'.repeat(20))), { maxNameLength: 10 }),
    /more than the limit of 10/,
  );
  rejectsWith(
    cat('nix-archive-1', '(', 'type', 'regular', 'contents', u64(1n << 60n)),
    /file size length 1152921504606846976 is beyond 2\^53-1/,
  );
  // 2^53-1 itself is accepted as a size (and then simply truncated here).
  const p = new NarParser();
  p.push(
    cat(
      'nix-archive-1',
      '(',
      'type',
      'regular',
      'contents',
      u64(2n ** 53n - 1n),
      Buffer.alloc(100),
    ),
  );
  assert.throws(() => p.end(), /file contents/);
});

test('errors are sticky: a failed parser keeps failing', () => {
  const p = new NarParser();
  assert.throws(() => p.push(Buffer.from('garbage!garbage!')));
  assert.throws(() => p.push(nar(sample)), /not a Nix archive/);
  assert.throws(() => p.end(), /not a Nix archive/);
});

test('deep nesting does not recurse', () => {
  const open = cat('(', 'type', 'directory', 'entry', '(', 'name', 'd', 'node');
  const close = cat(')', ')');
  const bytes = cat(
    'nix-archive-1',
    ...Array<Buffer>(3000).fill(open),
    node({ type: 'regular', contents: 'deep' }),
    ...Array<Buffer>(3000).fill(close),
  );
  let depth = 0;
  parseNar(bytes, { visitor: { file: (path) => (depth = path.length) } });
  assert.equal(depth, 3000);
});

test('paths given to the visitor are independent copies', () => {
  const bytes = nar(sample);
  const kept: NarPath[] = [];
  parseNar(bytes, {
    visitor: { file: (path) => kept.push(path), directory: (path) => kept.push(path) },
  });
  assert.deepEqual(
    kept.map((p) => p.map((b) => b.toString()).join('/')),
    ['', 'a', 'b', 'b/x', 'd', 'e'],
  );
});
