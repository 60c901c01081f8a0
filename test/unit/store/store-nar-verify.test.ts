import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { NarVerifier, verifyNar } from '../../../src/store/nar-verify.js';
import { NarMismatchError } from '../../../src/store/errors.js';
import { isLoftError } from '../../../src/util/errors.js';

const P = '/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo';
/** The doc's 120-byte NAR of a file "hi\n" and its hash. */
function nar(contents = 'hi\n'): Buffer {
  const str = (s: string) => {
    const b = Buffer.from(s);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(b.length));
    return Buffer.concat([len, b, Buffer.alloc((8 - (b.length % 8)) % 8)]);
  };
  return Buffer.concat(
    ['nix-archive-1', '(', 'type', 'regular', 'contents', contents, ')'].map(str),
  );
}
const HASH = 'sha256:1xmr8jicvzszfzpz46g37mlpvbzjl2wpwvl2b05psipssyp1sm8h';

async function run(chunks: Buffer[], expected: { narHash: string; narSize: number }) {
  const got: Buffer[] = [];
  let ended = false;
  const v = verifyNar(P, expected);
  v.on('end', () => (ended = true));
  await pipeline(
    Readable.from(chunks),
    v,
    new Writable({
      write(c: Buffer, _e, cb) {
        got.push(c);
        cb();
      },
    }),
  );
  return { data: Buffer.concat(got), ended };
}

test('a NAR matching narHash and narSize passes through unchanged and ends', async () => {
  const n = nar();
  const { data, ended } = await run([n.subarray(0, 7), n.subarray(7)], {
    narHash: HASH,
    narSize: 120,
  });
  assert.deepEqual(data, n);
  assert.equal(ended, true);
});

test('same size, different bytes: errors with NarMismatchError instead of ending', async () => {
  await assert.rejects(run([nar('ho\n')], { narHash: HASH, narSize: 120 }), (e: unknown) => {
    assert.ok(e instanceof NarMismatchError);
    assert.ok(isLoftError(e, 'NAR_MISMATCH'));
    assert.match(e.message, new RegExp(`store path ${P} looks corrupt`));
    assert.match(
      e.message,
      /registered sha256:1xmr8j\S+ \(120 bytes\) but its contents give sha256:\S+ \(120 bytes\)/,
    );
    assert.match(e.hint ?? '', new RegExp(`nix-store --verify-path ${P}`));
    assert.match(e.hint ?? '', /nix-store --verify --check-contents --repair/);
    return true;
  });
});

test('too long: errors as soon as the bytes pass narSize, before the end', async () => {
  let produced = 0;
  const endless = new Readable({
    read() {
      produced += 4096;
      this.push(Buffer.alloc(4096));
    },
  });
  await assert.rejects(
    pipeline(
      endless,
      verifyNar(P, { narHash: HASH, narSize: 10_000 }),
      new Writable({ write: (_c, _e, cb) => cb() }),
    ),
    (e: unknown) => e instanceof NarMismatchError && /more than 10000 bytes/.test(e.message),
  );
  assert.ok(produced < 100_000, `stopped early (${produced} bytes produced)`);
});

test('too short: errors at the end with both sizes', async () => {
  await assert.rejects(
    run([nar().subarray(0, 100)], { narHash: HASH, narSize: 120 }),
    (e: unknown) => e instanceof NarMismatchError && /\(100 bytes\)/.test(e.message),
  );
});

test('hashedByCaller: sizes are still checked here, the hash is left to the caller', async () => {
  const collect = async (chunks: Buffer[], expected: { narHash: string; narSize: number }) => {
    const v = new NarVerifier(P, expected, true);
    const out: Buffer[] = [];
    await pipeline(
      Readable.from(chunks),
      v,
      new Writable({
        write(c: Buffer, _e, cb) {
          out.push(c);
          cb();
        },
      }),
    );
    return Buffer.concat(out);
  };
  // Different bytes of the same size pass: the caller (the compressor) hashes them.
  const other = nar('ho\n');
  assert.deepEqual(await collect([other], { narHash: HASH, narSize: other.length }), other);
  // A size difference does not.
  await assert.rejects(collect([nar('hi there\n')], { narHash: HASH, narSize: 120 }), (e) =>
    isLoftError(e, 'NAR_MISMATCH'),
  );
  await assert.rejects(collect([nar().subarray(0, 100)], { narHash: HASH, narSize: 120 }), (e) =>
    isLoftError(e, 'NAR_MISMATCH'),
  );
});
