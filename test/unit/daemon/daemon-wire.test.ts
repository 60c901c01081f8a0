import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { WireReader } from '../../../src/daemon/wire-reader.js';
import { WireWriter } from '../../../src/daemon/wire-writer.js';
import { isLoftError } from '../../../src/util/errors.js';
import { str, u64 } from './scripted.js';

const eof = (what: string) => new Error(`EOF while ${what}`);

test('the writer frames integers and strings as Nix does (u64 LE, zero padding to 8)', () => {
  const b = new WireWriter().u64(1).string('abc').strings(['', 'exactly8']).bool(true).toBuffer();
  assert.equal(
    b.toString('hex'),
    Buffer.concat([u64(1), str('abc'), u64(2), str(''), str('exactly8'), u64(1)]).toString('hex'),
  );
  assert.equal(
    new WireWriter()
      .u64(2 ** 40 + 5)
      .toBuffer()
      .readBigUInt64LE(),
    2n ** 40n + 5n,
  );
  assert.throws(() => new WireWriter().u64(-1), RangeError);
});

test('any chunking of a stream reads back the same values', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.oneof(fc.nat(), fc.string({ maxLength: 40 })), { maxLength: 20 }),
      fc.array(fc.integer({ min: 1, max: 13 }), { minLength: 1, maxLength: 10 }),
      async (values, cuts) => {
        const w = new WireWriter();
        for (const v of values) {
          if (typeof v === 'number') w.u64(v);
          else w.string(v);
        }
        const bytes = w.toBuffer();
        const r = new WireReader(eof);
        const reads = (async () => {
          const out: (number | string)[] = [];
          for (const v of values)
            out.push(typeof v === 'number' ? await r.u64('n') : await r.string(100, 's'));
          return out;
        })();
        let i = 0;
        let k = 0;
        while (i < bytes.length) {
          const n = cuts[k++ % cuts.length]!;
          r.push(bytes.subarray(i, i + n));
          i += n;
          await Promise.resolve();
        }
        r.end();
        assert.deepEqual(await reads, values);
      },
    ),
    { numRuns: 200 },
  );
});

test('an oversized string is refused from its length alone, before its bytes arrive', async () => {
  const r = new WireReader(eof);
  r.push(u64(5000)); // nothing follows: a reader that waited for the bytes would hang
  await assert.rejects(r.string(4096, 'store path'), (e: unknown) => {
    assert.ok(isLoftError(e, 'DAEMON_PROTOCOL'));
    assert.match(e.message, /store path is 5000 bytes long, more than the limit of 4096/);
    return true;
  });
});

test('a huge list count is refused before any item is read', async () => {
  const r = new WireReader(eof);
  r.push(u64(2n ** 40n));
  await assert.rejects(
    r.strings(1000, 100, 'references'),
    /references has 1099511627776 items, more than the limit of 1000/,
  );
});

test('truncated frames fail with the end-of-stream error naming what was being read', async () => {
  const cases: [Buffer, (r: WireReader) => Promise<unknown>, string][] = [
    [Buffer.from([1, 0, 0]), (r) => r.u64('narSize'), 'narSize'],
    [Buffer.from([5, 0, 0, 0, 0, 0]), (r) => r.string(100, 'deriver'), 'deriver length'],
    [Buffer.concat([u64(5), Buffer.from('ab')]), (r) => r.string(100, 'deriver'), 'deriver'],
    [
      Buffer.concat([u64(5), Buffer.from('abcde'), Buffer.alloc(2)]),
      (r) => r.string(100, 'deriver'),
      'deriver',
    ],
    [Buffer.alloc(0), (r) => r.chunk(10, 'NAR data'), 'NAR data'],
  ];
  for (const [bytes, read, what] of cases) {
    const r = new WireReader(eof);
    r.push(bytes);
    r.end();
    await assert.rejects(read(r), new RegExp(`^Error: EOF while ${what}$`));
  }
});

test('non-zero padding, non-boolean booleans and integers beyond 2^53 are protocol errors', async () => {
  const bad: [Buffer, (r: WireReader) => Promise<unknown>, RegExp][] = [
    [
      Buffer.concat([u64(3), Buffer.from('abc'), Buffer.from([0, 0, 0, 0, 1])]),
      (r) => r.string(10, 'name'),
      /non-zero padding after name/,
    ],
    [u64(2), (r) => r.bool('valid flag'), /valid flag should be a boolean/],
    [u64(2n ** 53n), (r) => r.u64('narSize'), /narSize is 9007199254740992, beyond 2\^53-1/],
  ];
  for (const [bytes, read, msg] of bad) {
    const r = new WireReader(eof);
    r.push(bytes);
    await assert.rejects(
      read(r),
      (e: unknown) => isLoftError(e, 'DAEMON_PROTOCOL') && msg.test(e.message),
    );
  }
});

test('a failed transport fails pending and later reads with its error', async () => {
  const r = new WireReader(eof);
  const pending = r.u64('x');
  r.fail(new Error('ECONNRESET'));
  await assert.rejects(pending, /ECONNRESET/);
  await assert.rejects(r.u64('y'), /ECONNRESET/);
});

test('flow control: the source is paused above the high-water mark and resumed when drained', async () => {
  const calls: string[] = [];
  const r = new WireReader(
    eof,
    { pause: () => calls.push('pause'), resume: () => calls.push('resume') },
    64,
  );
  r.push(Buffer.alloc(40));
  assert.deepEqual(calls, []);
  r.push(Buffer.alloc(40));
  assert.deepEqual(calls, ['pause']);
  await r.chunk(30, 'data'); // 50 left: still above a quarter of 64
  assert.deepEqual(calls, ['pause']);
  assert.equal((await r.chunk(100, 'data')).length, 10, 'a chunk never spans two pushes');
  assert.deepEqual(calls, ['pause'], '40 left');
  await r.chunk(100, 'data');
  assert.deepEqual(calls, ['pause', 'resume'], 'drained');
  // A reader waiting for more than is buffered resumes a paused source too.
  r.push(Buffer.concat([u64(500), Buffer.alloc(92)]));
  assert.deepEqual(calls, ['pause', 'resume', 'pause']);
  const big = r.bytes(1000, 'blob');
  await new Promise((res) => setImmediate(res));
  assert.deepEqual(calls, ['pause', 'resume', 'pause', 'resume']);
  r.end();
  await assert.rejects(big);
});

test('unread puts bytes back in front', async () => {
  const r = new WireReader(eof);
  r.push(Buffer.from('abcdefgh'));
  const c = await r.chunk(100, 'x');
  r.unread(c.subarray(3));
  assert.equal((await r.chunk(100, 'x')).toString(), 'defgh');
});
