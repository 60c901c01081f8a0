/**
 * The zstd frame encoder hands its output on without copying where zlib is done with a
 * buffer: every output chunk must still be transferable on its own (no two share an
 * ArrayBuffer, none is Node's shared pool), and the chunks, transferred through a real
 * MessageChannel, must decompress (with zstd's own checksum) to the input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import { constants, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import {
  FRAME_OUT_BYTES,
  WholeFrameContexts,
  ZstdFrameEncoder,
} from '../../../src/compress/zstd-frame.js';
import { SpareBuffers } from '../../../src/util/spare-buffers.js';

/** Half random, half text: compresses to a bit over half. */
function mixed(size: number): Buffer {
  const text = Buffer.from('some text that repeats a lot\n'.repeat(Math.ceil(size / 58)));
  return Buffer.concat([randomBytes(Math.floor(size / 2)), text]).subarray(0, size);
}

async function frameOf(input: Buffer, writeSize: number): Promise<Buffer[]> {
  const enc = new ZstdFrameEncoder({ level: 3 });
  const out: Buffer[] = [];
  if (writeSize >= input.length) return enc.end(input);
  for (let at = 0; at < input.length; at += writeSize) {
    out.push(...(await enc.write(input.subarray(at, at + writeSize))));
  }
  out.push(...(await enc.end()));
  return out;
}

/** Transfer the chunks through a MessageChannel, as a packer thread does. */
function transferred(chunks: Buffer[]): Uint8Array[] {
  const { port1, port2 } = new MessageChannel();
  try {
    port1.postMessage(
      chunks,
      chunks.map((c) => c.buffer as ArrayBuffer),
    );
    return receiveMessageOnPort(port2)!.message as Uint8Array[];
  } finally {
    port1.close();
    port2.close();
  }
}

test('zstd output chunks are transferable one by one and decompress to the input', async () => {
  const cases: [string, Buffer, number][] = [
    ['empty, one call', Buffer.alloc(0), 1],
    ['3 KB, one call', mixed(3000), 1 << 20],
    ['900 KB mixed, streamed', mixed(900_000), 1 << 20],
    ['900 KB mixed, streamed in 64 KiB writes', mixed(900_000), 64 * 1024],
    ['5 MiB random, streamed', randomBytes(5 << 20), 1 << 20],
    ['3 MiB mixed, streamed', mixed(3 << 20), 1 << 20],
  ];
  for (const [name, input, writeSize] of cases) {
    const chunks = await frameOf(input, writeSize);
    const buffers = new Set(chunks.map((c) => c.buffer));
    assert.equal(buffers.size, chunks.length, `${name}: no two chunks share a buffer`);
    const got = Buffer.concat(transferred(chunks));
    assert.ok(zstdDecompressSync(got).equals(input), `${name}: round trip`);
  }
});

test('whole inputs through reused contexts: each frame is the one-shot frame, its chunks transferable and never written again', () => {
  const contexts = new WholeFrameContexts();
  const oneShot = (input: Buffer, level: number) =>
    zstdCompressSync(input, {
      params: { [constants.ZSTD_c_compressionLevel]: level, [constants.ZSTD_c_checksumFlag]: 1 },
    });
  // Sizes whose frames fit the first output buffer, span several, and end exactly or
  // mid-buffer, through the same contexts one after another.
  const inputs = [
    mixed(900_000),
    mixed(3000),
    Buffer.alloc(0),
    randomBytes(700_000),
    mixed(1 << 20),
  ];
  // One gather buffer, overwritten after each frame, as the packer reuses its own; each
  // input is a view a few bytes into it, so an offset taken from the wrong base shows.
  const at = 3;
  const gather = Buffer.alloc(at + (1 << 20));
  const frames: { name: string; input: Buffer; level: number; chunks: Buffer[] }[] = [];
  for (const level of [3, 1, 3]) {
    for (const [i, input] of inputs.entries()) {
      input.copy(gather, at);
      const chunks = contexts.frame(gather.subarray(at, at + input.length), level);
      gather.fill(0xa5);
      frames.push({
        name: `level ${level}, input ${i} (${input.length} bytes)`,
        input,
        level,
        chunks,
      });
    }
  }
  // Checked once every frame is made: a later frame must not have written into an
  // earlier one's buffers.
  for (const { name, input, level, chunks } of frames) {
    assert.equal(
      new Set(chunks.map((c) => c.buffer)).size,
      chunks.length,
      `${name}: no two chunks share a buffer`,
    );
    const got = Buffer.concat(transferred(chunks));
    assert.ok(got.equals(oneShot(input, level)), `${name}: the one-shot call's frame`);
    assert.ok(zstdDecompressSync(got).equals(input), `${name}: round trip`);
  }
});

test('a frame encoder given reused contexts compresses whole inputs, small and large, to the one-shot frame', async () => {
  const contexts = new WholeFrameContexts();
  for (const input of [mixed(500_000), mixed(3000), mixed(500_000)]) {
    const expected = zstdCompressSync(input, {
      params: { [constants.ZSTD_c_compressionLevel]: 3, [constants.ZSTD_c_checksumFlag]: 1 },
    });
    const chunks = await new ZstdFrameEncoder({ level: 3 }, contexts).end(input);
    assert.ok(Buffer.concat(transferred(chunks)).equals(expected), `${input.length} bytes`);
  }
});

test('output buffers given back are written into again, and the frames are still the one-shot frames', () => {
  const spare = new SpareBuffers(FRAME_OUT_BYTES, 64);
  const contexts = new WholeFrameContexts(spare);
  const oneShot = (input: Buffer) =>
    zstdCompressSync(input, {
      params: { [constants.ZSTD_c_compressionLevel]: 3, [constants.ZSTD_c_checksumFlag]: 1 },
    });
  const first = mixed(900_000);
  const sent = transferred(contexts.frame(first, 3));
  assert.ok(Buffer.concat(sent).equals(oneShot(first)), 'the first frame');
  // The consumer's side gives back the whole-size buffers, as the uploader does once their
  // bytes are out; what they held is overwritten, so stale bytes cannot pass for output.
  const whole = sent.filter((c) => c.buffer.byteLength === FRAME_OUT_BYTES);
  assert.ok(whole.length >= 4, `${whole.length} whole-size output buffers`);
  const returned = transferred(whole.map((c) => Buffer.from(c.buffer))).map((c) => c.buffer);
  for (const ab of returned) new Uint8Array(ab).fill(0xa5);
  for (const ab of returned) assert.ok(spare.give(Buffer.from(ab)), 'kept as a spare');

  const second = randomBytes(200_000);
  const chunks = contexts.frame(second, 3);
  const reused = chunks.filter((c) => returned.includes(c.buffer));
  assert.ok(reused.length >= 3, `${reused.length} of its buffers were given back ones`);
  // A buffer its bytes were copied out of (the last, mostly empty) goes back to the spares.
  assert.equal(spare.count, returned.length - reused.length, 'each taken from the spares once');
  assert.ok(Buffer.concat(transferred(chunks)).equals(oneShot(second)), 'the second frame');
});
