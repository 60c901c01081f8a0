import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { getCompression, shutdownCompression } from '../../../src/compress/index.js';
import { decompressors, generate, roundTrip, zstdFrames } from './support.js';

after(() => shutdownCompression());

const methods = ['zstd', 'xz', 'none'] as const;

for (const method of methods) {
  test(`${method}: empty, tiny and odd-sized inputs round-trip through the real decompressor`, async () => {
    const c = getCompression(method);
    const inputs: Buffer[][] = [
      [],
      [Buffer.alloc(0)],
      [Buffer.from('a')],
      [Buffer.from('hello'), Buffer.alloc(0), Buffer.from(' world')],
      [...generate('text', 4096, 4096)],
      [...generate('random', 70_000, 70_000)],
      // Just below, at and just above the 512 KiB batch size.
      [...generate('text', 512 * 1024 - 1, 100_000)],
      [...generate('text', 512 * 1024, 512 * 1024)],
      [...generate('random', 512 * 1024 + 1, 512 * 1024 + 1)],
    ];
    for (const input of inputs) {
      const r = await roundTrip(c.createCompressor(), decompressors[method] as string[], input, {
        keep: true,
      });
      const size = input.reduce((n, b) => n + b.length, 0);
      assert.equal(r.inputBytes, size);
      assert.equal(r.outputSha256, r.inputSha256, `${method} round trip of ${size} bytes`);
      if (method === 'none') assert.equal(r.compressedBytes, size);
      else assert.ok(r.compressedBytes > 0, 'even empty input makes a valid (non-empty) file');
    }
  });

  test(`${method}: thousands of small chunks of varying size round-trip`, async () => {
    const c = getCompression(method);
    const chunks: Buffer[] = [];
    let seed = 7;
    for (const big of generate('text', 3 * 1024 * 1024, 3 * 1024 * 1024)) {
      for (let at = 0; at < big.length;) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        const n = 1 + (seed % 2000);
        chunks.push(big.subarray(at, at + n));
        at += n;
      }
    }
    assert.ok(chunks.length > 2000);
    const r = await roundTrip(c.createCompressor(), decompressors[method] as string[], chunks);
    assert.equal(r.outputSha256, r.inputSha256);
    assert.equal(r.inputBytes, 3 * 1024 * 1024);
  });
}

test('zstd writes exactly one frame, with a checksum, for small and multi-batch inputs', async () => {
  const zstd = getCompression('zstd');
  for (const size of [0, 1, 4096, 600_000, 5 * 1024 * 1024]) {
    const r = await roundTrip(
      zstd.createCompressor(),
      decompressors.zstd as string[],
      generate('text', size, 256 * 1024),
      { keep: true },
    );
    const f = zstdFrames(r.compressed as Buffer);
    assert.equal(f.frames, 1, `${size} bytes -> ${f.frames} frames`);
    assert.deepEqual(f.checksums, [true]);
    // Inputs that fit one batch are compressed knowing their size, which zstd records.
    if (size <= 512 * 1024) assert.deepEqual(f.contentSizes, [size]);
  }
});

test('the level is honoured: higher levels compress text smaller', async () => {
  const sizes: Record<string, number> = {};
  for (const [method, level] of [
    ['zstd', 1],
    ['zstd', 19],
    ['xz', 0],
    ['xz', 6],
  ] as const) {
    const r = await roundTrip(
      getCompression(method).createCompressor({ level }),
      decompressors[method] as string[],
      generate('text', 1024 * 1024, 64 * 1024),
    );
    assert.equal(r.outputSha256, r.inputSha256);
    sizes[`${method}-${level}`] = r.compressedBytes;
  }
  assert.ok((sizes['zstd-19'] as number) < (sizes['zstd-1'] as number), JSON.stringify(sizes));
  assert.ok((sizes['xz-6'] as number) < (sizes['xz-0'] as number), JSON.stringify(sizes));
});

test('zstd: many NARs at once each round-trip (sessions share the worker pool)', async () => {
  const zstd = getCompression('zstd');
  const results = await Promise.all(
    Array.from({ length: 12 }, (_, i) =>
      roundTrip(
        zstd.createCompressor(),
        decompressors.zstd as string[],
        generate(i % 2 ? 'random' : 'text', 300_000 * (i + 1), 64 * 1024, i + 1),
      ),
    ),
  );
  for (const r of results) assert.equal(r.outputSha256, r.inputSha256);
});
