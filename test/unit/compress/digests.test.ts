import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import {
  getCompression,
  shutdownCompression,
  type CompressionName,
  type CompressorOptions,
} from '../../../src/compress/index.js';
import { isLoftError } from '../../../src/util/errors.js';

after(() => shutdownCompression());

const sha = (b: Buffer) => createHash('sha256').update(b).digest();

/** Write `input` in uneven chunks; resolve with the output, whether it ended, and any error. */
async function run(
  name: CompressionName,
  input: Buffer,
  opts: CompressorOptions,
): Promise<{ out: Buffer; ended: boolean; error?: unknown; c: ReturnType<typeof make> }> {
  const c = make(name, opts);
  const chunks: Buffer[] = [];
  let ended = false;
  c.on('data', (b: Buffer) => chunks.push(b));
  const settled = new Promise<unknown>((resolve) => {
    c.on('end', () => {
      ended = true;
      resolve(undefined);
    });
    c.on('error', resolve);
  });
  for (let off = 0; off < input.length; off += 70_001) c.write(input.subarray(off, off + 70_001));
  c.end();
  const error = await settled;
  return { out: Buffer.concat(chunks), ended, error, c };
}

function make(name: CompressionName, opts: CompressorOptions) {
  return getCompression(name).createCompressor({ ...opts, level: name === 'xz' ? 0 : undefined });
}

for (const name of ['zstd', 'xz', 'none'] as const) {
  for (const size of [0, 100, 3_000_000]) {
    test(`${name}: digests of ${size} input bytes are the sha256 and size of input and output`, async () => {
      const input = randomBytes(size);
      const r = await run(name, input, { digests: true });
      assert.equal(r.error, undefined);
      assert.ok(r.ended);
      const d = r.c.digests()!;
      assert.deepEqual(d.inputSha256, sha(input));
      assert.equal(d.inputSize, size);
      assert.deepEqual(d.outputSha256, sha(r.out));
      assert.equal(d.outputSize, r.out.length);
    });
  }

  test(`${name}: input that differs from the expectation errors instead of ending`, async () => {
    const input = randomBytes(1_000_000);
    const wrong = Buffer.from(sha(input));
    wrong[0]! ^= 1;
    const r = await run(name, input, { expectInput: { sha256: wrong, size: input.length } });
    assert.equal(r.ended, false);
    assert.ok(isLoftError(r.error, 'COMPRESSION_INPUT_MISMATCH'), String(r.error));

    const right = await run(name, input, {
      expectInput: { sha256: sha(input), size: input.length },
    });
    assert.equal(right.error, undefined);
    assert.ok(right.ended);
  });

  test(`${name}: input that grows past the expected size errors before it is all read`, async () => {
    const input = randomBytes(2_000_000);
    const r = await run(name, input, { expectInput: { sha256: sha(input), size: 500_000 } });
    assert.equal(r.ended, false);
    assert.ok(isLoftError(r.error, 'COMPRESSION_INPUT_MISMATCH'));
    assert.match(String((r.error as Error).message), /grew past the expected 500000 bytes/);
  });

  test(`${name}: without digests asked for, none are kept`, async () => {
    const r = await run(name, Buffer.from('abc'), {});
    assert.ok(r.ended);
    assert.equal(r.c.digests(), undefined);
  });
}
