/**
 * The NAR packer against real Nix: what it streams decompresses to exactly the bytes of
 * `nix-store --dump`, its digests and listing are right, and it refuses what does not
 * match, stops when nobody reads, and lets go when cancelled.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NarPacker, PackSourceError } from '../../../src/pack/index.js';
import { releaseNow } from '../../../src/util/releasable-buffers.js';
import { Hash } from '../../../src/nix/hash.js';
import { narListing } from '../../../src/nix/nar-listing.js';
import { isLoftError } from '../../../src/util/errors.js';
import { nixStoreDump } from '../../support/nix.js';

const packer = new NarPacker();
after(() => packer.shutdown());

function tree(bigBytes = 0): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'loft-pack-')), 'root');
  mkdirSync(join(dir, 'sub/empty'), { recursive: true });
  writeFileSync(join(dir, 'sub/file'), 'hello\n');
  writeFileSync(join(dir, 'exe'), '#!/bin/sh\n');
  chmodSync(join(dir, 'exe'), 0o755);
  symlinkSync('sub/file', join(dir, 'link'));
  writeFileSync(join(dir, 'Ω-név'), randomBytes(100_000));
  if (bigBytes > 0) writeFileSync(join(dir, 'big'), randomBytes(bigBytes));
  return dir;
}

async function expectation(dir: string) {
  const nar = await nixStoreDump(dir);
  return {
    nar,
    narHash: new Hash('sha256', createHash('sha256').update(nar).digest()).toNix32String(),
    narSize: nar.length,
  };
}

async function collect(s: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c);
  return Buffer.concat(parts);
}

for (const name of ['zstd', 'none'] as const) {
  const compression = name === 'zstd' ? { name, level: 3 } : { name };
  test(`${name}: the stream is the NAR of nix-store --dump, with digests and listing`, async () => {
    const dir = tree(3_000_000);
    const { nar, narHash, narSize } = await expectation(dir);
    const s = packer.pack({ path: dir, compression, narHash, narSize, listing: true });
    const out = await collect(s);
    const plain =
      name === 'zstd' ? execFileSync('zstd', ['-dc'], { input: out, maxBuffer: 1 << 26 }) : out;
    assert.ok(plain.equals(nar), 'decompresses to the NAR Nix makes');
    const d = s.digests()!;
    assert.equal(d.inputSize, narSize);
    assert.equal(new Hash('sha256', d.inputSha256).toNix32String(), narHash);
    assert.deepEqual(d.outputSha256, createHash('sha256').update(out).digest());
    assert.equal(d.outputSize, out.length);
    assert.deepEqual(s.listing(), narListing(nar));
  });
}

test('a big NAR streams in many pieces and still decompresses to the NAR', async () => {
  const dir = tree(40_000_000);
  const { nar, narHash, narSize } = await expectation(dir);
  const s = packer.pack({ path: dir, compression: { name: 'zstd', level: 3 }, narHash, narSize });
  let pieces = 0;
  const parts: Buffer[] = [];
  for await (const c of s) {
    pieces++;
    parts.push(c);
  }
  assert.ok(pieces > 10, `${pieces} pieces`);
  assert.ok(
    execFileSync('zstd', ['-dc'], { input: Buffer.concat(parts), maxBuffer: 1 << 27 }).equals(nar),
  );
});

test('a NAR of up to 1 MiB is one single-pass zstd frame that records its size; a bigger one streams without', async () => {
  const frameInfo = async (bigBytes: number) => {
    const dir = tree(bigBytes);
    const { nar, narHash, narSize } = await expectation(dir);
    const s = packer.pack({ path: dir, compression: { name: 'zstd', level: 3 }, narHash, narSize });
    const file = join(mkdtempSync(join(tmpdir(), 'loft-pack-')), 'nar.zst');
    writeFileSync(file, await collect(s));
    assert.ok(execFileSync('zstd', ['-dc', file], { maxBuffer: 1 << 26 }).equals(nar));
    // The zstd CLI reads the frame header: "Decompressed Size: ... (N B)" only when recorded.
    const listed = execFileSync('zstd', ['-lv', file], { encoding: 'utf8' });
    return { narSize, recorded: /Decompressed Size: .*\((\d+) B\)/.exec(listed)?.[1] };
  };
  // About 100 KB of NAR, in several chunks (its 100,000-byte file is read on its own).
  const small = await frameInfo(0);
  assert.ok(small.narSize < 1024 * 1024, `${small.narSize} bytes`);
  assert.equal(small.recorded, String(small.narSize));
  const big = await frameInfo(3_000_000);
  assert.equal(big.recorded, undefined);
});

test('NARs packed after the output before them was released (handed back to the thread) still decompress to the NAR', async () => {
  // One thread, so every NAR's output buffers come from the ones released before it.
  const one = new NarPacker({ size: 1 });
  try {
    for (let i = 0; i < 4; i++) {
      const dir = tree(700_000);
      const { nar, narHash, narSize } = await expectation(dir);
      const s = one.pack({ path: dir, compression: { name: 'zstd', level: 3 }, narHash, narSize });
      const parts: Buffer[] = [];
      for await (const c of s as AsyncIterable<Buffer>) {
        parts.push(Buffer.from(c));
        releaseNow(c);
      }
      const out = Buffer.concat(parts);
      assert.ok(
        execFileSync('zstd', ['-dc'], { input: out, maxBuffer: 1 << 26 }).equals(nar),
        `NAR ${i}`,
      );
      assert.deepEqual(s.digests()!.outputSha256, createHash('sha256').update(out).digest());
      // A turn of the event loop: the released buffers go back before the next job.
      await new Promise((r) => setImmediate(r));
    }
  } finally {
    await one.shutdown();
  }
});

test('bytes that differ from the registered hash or size error instead of ending', async () => {
  const dir = tree();
  const { narHash, narSize } = await expectation(dir);
  const other = new Hash('sha256', createHash('sha256').update('other').digest()).toNix32String();
  for (const [h, n] of [
    [other, narSize],
    [narHash, narSize - 8],
    [narHash, narSize + 8],
  ] as const) {
    const s = packer.pack({
      path: dir,
      compression: { name: 'zstd', level: 3 },
      narHash: h,
      narSize: n,
    });
    let ended = false;
    s.on('end', () => (ended = true));
    await assert.rejects(collect(s), (e) => isLoftError(e, 'COMPRESSION_INPUT_MISMATCH'));
    assert.equal(ended, false);
  }
});

test('a path that is not on disk is a PackSourceError (the caller reads it another way)', async () => {
  const s = packer.pack({
    path: '/nonexistent/path',
    compression: { name: 'zstd', level: 3 },
    narHash: `sha256:${'0'.repeat(52)}`,
    narSize: 100,
  });
  await assert.rejects(collect(s), (e) => e instanceof PackSourceError && e.errno === 'ENOENT');
});

test('nobody reading stops the packer; destroying the stream lets the job go', async () => {
  const dir = tree(30_000_000);
  const { narHash, narSize } = await expectation(dir);
  const s = packer.pack({ path: dir, compression: { name: 'none' }, narHash, narSize });
  s.pause();
  await new Promise((r) => setTimeout(r, 1500));
  // Credit bounds what arrives: the readable buffer plus the messages in flight.
  assert.ok(s.readableLength < 4 * 1024 * 1024, `${s.readableLength} bytes buffered`);
  s.destroy();
  // The packer is free for the next job.
  const again = packer.pack({ path: dir, compression: { name: 'none' }, narHash, narSize });
  assert.equal((await collect(again)).length, narSize);
});

test('shutdown fails the jobs still running instead of leaving them hanging', async () => {
  const own = new NarPacker({ size: 1 });
  const dir = tree(20_000_000);
  const { narHash, narSize } = await expectation(dir);
  const s = own.pack({ path: dir, compression: { name: 'none' }, narHash, narSize });
  s.pause();
  const failed = new Promise<unknown>((resolve) => s.once('error', resolve));
  await new Promise((r) => setTimeout(r, 200));
  await own.shutdown();
  assert.ok(isLoftError(await failed, 'PACK_FAILED'));
});
