/**
 * Chunks marked releasable (the packer's transferred output) are freed by the streamed
 * upload as soon as their bytes are in a part buffer, and only then: the parts still hold
 * the exact bytes, a chunk split across two parts is freed only once both halves are
 * copied, and unmarked chunks are never touched. A single-PUT body (sent by reference) is
 * freed once the PUT is answered, and left alone when the PUT fails. A chunk marked with an
 * owner (a packer thread's output buffer) goes back to it instead of being freed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { MemoryBudget } from '../../../src/storage/memory-budget.js';
import { MiB, planParts } from '../../../src/storage/part-size.js';
import { streamedUpload, type PartSink } from '../../../src/storage/streamed-upload.js';
import { markReleasable, releaseNow } from '../../../src/util/releasable-buffers.js';

/** The chunks as an async source, handed on as they are (as a PackStream does). */
async function* source(chunks: Buffer[]): AsyncGenerator<Buffer> {
  for (const c of chunks) yield c;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const plan = planParts({ basePartSize: 5 * MiB });

/** `n` chunks of `size` random bytes, each on an ArrayBuffer of its own. */
function ownChunks(n: number, size: number): Buffer[] {
  return Array.from({ length: n }, () => {
    const b = Buffer.allocUnsafeSlow(size);
    randomBytes(size).copy(b);
    return b;
  });
}

class CollectingSink implements PartSink {
  parts = new Map<number, Buffer>();
  whole: Buffer | undefined;
  /** Each chunk's length when the part that ends in it was sent. */
  seenAtPart = new Map<number, number[]>();
  /** Each watched chunk's length when the single PUT was sent. */
  seenAtPut: number[] | undefined;
  constructor(
    private readonly watch: Buffer[] = [],
    private readonly putFails = false,
  ) {}
  async putWhole(chunks: readonly Buffer[]) {
    this.seenAtPut = this.watch.map((c) => c.length);
    if (this.putFails) throw new Error('PUT failed');
    this.whole = Buffer.concat(chunks);
  }
  async create() {
    return 'u';
  }
  async uploadPart(_id: string, n: number, body: Buffer) {
    this.seenAtPart.set(
      n,
      this.watch.map((c) => c.length),
    );
    this.parts.set(n, Buffer.from(body));
    return `e${n}`;
  }
  async complete() {}
  async abort() {}
  assembled(): Buffer {
    return Buffer.concat(
      [...this.parts.keys()].sort((a, b) => a - b).map((k) => this.parts.get(k)!),
    );
  }
}

/** Upload `chunks` (as a PackStream hands them on) into `sink`, 5 MiB parts, 64 MiB budget. */
function upload(chunks: Buffer[], sink: PartSink, concurrency: number) {
  return streamedUpload(source(chunks), sink, {
    key: 'k',
    budget: new MemoryBudget(64 * MiB),
    plan,
    concurrency,
  });
}

test('marked chunks are freed once copied into parts, and the parts hold the exact bytes', async () => {
  // 3 MiB chunks against 5 MiB parts: chunk 2 is split between parts 1 and 2.
  const chunks = ownChunks(5, 3 * MiB);
  const expected = sha(Buffer.concat(chunks));
  for (const c of chunks) markReleasable(c);
  const sink = new CollectingSink(chunks);
  const r = await upload(chunks, sink, 1);
  assert.deepEqual(r, { size: 15 * MiB, parts: 3, multipart: true });
  assert.equal(sha(sink.assembled()), expected);
  // When part 1 (chunk 1 and the first 2 MiB of chunk 2) was sent, chunk 1 was freed
  // and chunk 2, half read, was not.
  const atPart1 = sink.seenAtPart.get(1)!;
  assert.equal(atPart1[0], 0, 'chunk 1 freed once copied');
  assert.equal(atPart1[1], 3 * MiB, 'chunk 2 kept while its rest is unread');
  // In the end every chunk was copied, so every one was freed.
  assert.deepEqual(
    chunks.map((c) => c.length),
    [0, 0, 0, 0, 0],
  );
});

test('unmarked chunks are left alone', async () => {
  const unmarked = ownChunks(4, 3 * MiB);
  const sink = new CollectingSink();
  await upload(unmarked, sink, 2);
  assert.deepEqual(
    unmarked.map((c) => c.length),
    [3 * MiB, 3 * MiB, 3 * MiB, 3 * MiB],
  );
});

test('a single-PUT body is sent whole, freed once the PUT is answered, and kept if it fails', async () => {
  const small = ownChunks(2, MiB);
  const expected = sha(Buffer.concat(small));
  for (const c of small) markReleasable(c);
  const sink = new CollectingSink(small);
  const r = await upload(small, sink, 2);
  assert.equal(r.multipart, false);
  assert.deepEqual(sink.seenAtPut, [MiB, MiB], 'the chunks were whole while the PUT was sent');
  assert.equal(sha(sink.whole!), expected);
  assert.deepEqual(
    small.map((c) => c.length),
    [0, 0],
    'freed once the PUT was answered',
  );

  // A failed PUT may have been cut off mid-write: its chunks are left to the collector.
  const kept = ownChunks(2, MiB);
  for (const c of kept) markReleasable(c);
  await assert.rejects(upload(kept, new CollectingSink(kept, true), 2));
  assert.deepEqual(
    kept.map((c) => c.length),
    [MiB, MiB],
  );
});

test('releaseNow frees only marked buffers, once', () => {
  const marked = Buffer.allocUnsafeSlow(1024);
  const plain = Buffer.allocUnsafeSlow(1024);
  markReleasable(marked);
  releaseNow(plain);
  releaseNow(marked);
  assert.equal(plain.length, 1024);
  assert.equal(marked.length, 0);
  releaseNow(marked); // a second call is harmless
  assert.equal(marked.length, 0);
});

test('releaseNow hands a buffer marked with an owner to that owner whole, once, instead of freeing it', () => {
  const taken: ArrayBuffer[] = [];
  const back = Buffer.allocUnsafeSlow(1024);
  markReleasable(back, (ab) => taken.push(ab));
  releaseNow(back);
  assert.deepEqual(taken, [back.buffer], 'the owner got the ArrayBuffer itself');
  assert.equal(back.length, 1024, 'taken back, not freed');
  releaseNow(back);
  assert.equal(taken.length, 1, 'handed over once');
});
