/**
 * The streaming upload engine over a scripted in-memory part store (our own PartSink, not
 * the SDK): byte-exact reassembly, the single-PUT cut-off, the shared memory bound, and
 * what happens on failure (in-flight parts awaited before the abort, source destroyed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { BufferPool, MemoryBudget } from '../../../src/storage/memory-budget.js';
import { MiB, planParts } from '../../../src/storage/part-size.js';
import {
  streamedUpload,
  type CompletedPart,
  type PartSink,
} from '../../../src/storage/streamed-upload.js';
import { isLoftError } from '../../../src/util/errors.js';
import { patternStream } from '../../support/s3.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const plan = planParts({ basePartSize: 5 * MiB });

async function bytesOf(size: number, seed: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of patternStream(size, seed)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

class MemorySink implements PartSink {
  whole: Buffer | undefined;
  parts = new Map<number, Buffer>();
  completed: CompletedPart[] | undefined;
  created = 0;
  aborts: { at: number; partsInFlight: number }[] = [];
  inFlight = 0;
  bytesInFlight = 0;
  peakBytesInFlight = 0;
  partCalls: number[] = [];
  constructor(
    private readonly behaviour: {
      delay?: (n: number) => number;
      fail?: (n: number) => Error | undefined;
    } = {},
  ) {}
  async putWhole(chunks: readonly Buffer[], size: number) {
    this.whole = Buffer.concat(chunks);
    assert.equal(this.whole.length, size);
  }
  async create() {
    this.created++;
    return 'upload-1';
  }
  async uploadPart(_id: string, n: number, body: Buffer, signal: AbortSignal) {
    this.partCalls.push(n);
    this.inFlight++;
    this.bytesInFlight += body.length;
    this.peakBytesInFlight = Math.max(this.peakBytesInFlight, this.bytesInFlight);
    // Like the SDK, the sink reads the body for as long as the request is in flight:
    // the engine must not reuse the buffer before the call settles.
    const atStart = sha(body);
    try {
      await sleep(this.behaviour.delay?.(n) ?? 2);
      if (sha(body) !== atStart) throw new Error(`part ${n} changed while in flight`);
      const err = this.behaviour.fail?.(n);
      if (err) throw err;
      // Like the SDK: an aborted signal fails the request, but only after it was in flight.
      if (signal.aborted) throw new Error('request aborted');
      this.parts.set(n, Buffer.from(body));
      return `etag-${n}`;
    } finally {
      this.inFlight--;
      this.bytesInFlight -= body.length;
    }
  }
  async complete(_id: string, parts: CompletedPart[]) {
    this.completed = parts;
  }
  async abort() {
    this.aborts.push({ at: Date.now(), partsInFlight: this.inFlight });
  }
  assembled(): Buffer {
    return Buffer.concat(this.completed!.map((p) => this.parts.get(p.partNumber)!));
  }
}

test('a stream larger than one part arrives byte-exact through parts, in order', async () => {
  const size = 17 * MiB + 12345;
  const expected = await bytesOf(size, 'multi');
  const sink = new MemorySink({ delay: (n) => (n % 2 ? 15 : 1) });
  const progress: number[] = [];
  const r = await streamedUpload(patternStream(size, 'multi'), sink, {
    key: 'nar/x.nar',
    budget: new MemoryBudget(64 * MiB),
    plan,
    concurrency: 3,
    onProgress: (n) => progress.push(n),
  });
  assert.deepEqual(r, { size, parts: 4, multipart: true });
  assert.equal(sink.whole, undefined);
  assert.deepEqual(
    sink.completed!.map((p) => p.partNumber),
    [1, 2, 3, 4],
  );
  assert.deepEqual(
    sink.completed!.map((p) => p.etag),
    ['etag-1', 'etag-2', 'etag-3', 'etag-4'],
  );
  assert.equal(sha(sink.assembled()), sha(expected));
  assert.deepEqual(
    [...sink.parts.values()].map((b) => b.length).sort((a, b) => b - a),
    [5 * MiB, 5 * MiB, 5 * MiB, 2 * MiB + 12345],
  );
  assert.deepEqual(
    progress,
    [...progress].sort((a, b) => a - b),
  );
  assert.equal(progress.at(-1), size);
  assert.equal(sink.aborts.length, 0);
});

test('a body that fits in the first part is one PUT (including exactly one part, and empty)', async () => {
  for (const size of [0, 1, 3 * MiB, 5 * MiB]) {
    const sink = new MemorySink();
    const budget = new MemoryBudget(64 * MiB);
    const r = await streamedUpload(patternStream(size, `single${size}`), sink, {
      key: 'k',
      budget,
      plan,
      concurrency: 4,
    });
    assert.deepEqual(r, { size, parts: 1, multipart: false }, `size ${size}`);
    assert.equal(sink.created, 0);
    assert.equal(sha(sink.whole!), sha(await bytesOf(size, `single${size}`)));
    assert.equal(budget.inUse, 0, 'budget returned');
  }
});

test('concurrent uploads share one budget: part bytes in flight never exceed it', async () => {
  const run = async (budgetBytes: number) => {
    const budget = new MemoryBudget(budgetBytes);
    const sink = new MemorySink({ delay: () => 10 });
    const sizes = [16 * MiB + 1, 16 * MiB + 2, 16 * MiB + 3, 16 * MiB + 4];
    const results = await Promise.all(
      sizes.map((size, i) =>
        streamedUpload(patternStream(size, `shared${i}`), sinkFor(sink, i), {
          key: `k${i}`,
          budget,
          plan,
          concurrency: 4,
        }),
      ),
    );
    assert.deepEqual(
      results.map((r) => r.size),
      sizes,
    );
    return { sinkPeak: sink.peakBytesInFlight, budgetPeak: budget.peak, inUse: budget.inUse };
  };
  const limited = await run(12 * MiB);
  assert.ok(limited.budgetPeak <= 12 * MiB, `budget peak ${limited.budgetPeak}`);
  assert.ok(limited.sinkPeak <= 12 * MiB, `bytes in flight ${limited.sinkPeak}`);
  assert.equal(limited.inUse, 0);
  // Control: without the limit the same uploads do hold more, so the check above can fail.
  const free = await run(1024 * MiB);
  assert.ok(free.sinkPeak > 12 * MiB, `unlimited peak ${free.sinkPeak}`);
});

// One shared counter of bytes in flight across uploads, separate part maps per upload.
function sinkFor(shared: MemorySink, i: number): PartSink {
  const own = new MemorySink();
  return {
    putWhole: (b, n) => own.putWhole(b, n),
    create: () => own.create(),
    uploadPart: async (id, n, body, signal) => {
      shared.bytesInFlight += body.length;
      shared.peakBytesInFlight = Math.max(shared.peakBytesInFlight, shared.bytesInFlight);
      try {
        await sleep(10 + i);
        return await own.uploadPart(id, n, body, signal);
      } finally {
        shared.bytesInFlight -= body.length;
      }
    },
    complete: (id, parts) => own.complete(id, parts),
    abort: () => own.abort(),
  };
}

test('a failed part: in-flight parts are awaited, then the upload is aborted; source destroyed', async () => {
  const boom = new Error('part 2 rejected');
  const sink = new MemorySink({
    delay: (n) => (n === 2 ? 1 : 80),
    fail: (n) => (n === 2 ? boom : undefined),
  });
  const source = patternStream(40 * MiB, 'fail');
  const budget = new MemoryBudget(64 * MiB);
  await assert.rejects(
    streamedUpload(source, sink, { key: 'k', budget, plan, concurrency: 3 }),
    (e) => e === boom,
  );
  assert.equal(sink.aborts.length, 1);
  assert.equal(sink.aborts[0]!.partsInFlight, 0, 'abort waited for parts 1 and 3');
  assert.equal(sink.completed, undefined);
  assert.ok(source.destroyed, 'source destroyed');
  assert.ok(Math.max(...sink.partCalls) < 8, `stopped reading early: ${sink.partCalls}`);
  assert.equal(budget.inUse, 0);
});

test("the source's own error comes out unchanged, after the abort", async () => {
  const mismatch = new Error('NAR hash mismatch');
  async function* source() {
    yield* patternStream(12 * MiB, 'src');
    throw mismatch;
  }
  const sink = new MemorySink();
  const budget = new MemoryBudget(64 * MiB);
  await assert.rejects(
    streamedUpload(source(), sink, { key: 'k', budget, plan, concurrency: 2 }),
    (e) => e === mismatch,
  );
  assert.equal(sink.created, 1);
  assert.equal(sink.aborts.length, 1);
  assert.equal(sink.completed, undefined);
  assert.equal(budget.inUse, 0);

  // Failing inside the first part: nothing was started, so nothing to abort or publish.
  async function* early() {
    yield Buffer.alloc(1000);
    throw mismatch;
  }
  const sink2 = new MemorySink();
  await assert.rejects(
    streamedUpload(early(), sink2, { key: 'k', budget, plan, concurrency: 2 }),
    (e) => e === mismatch,
  );
  assert.equal(sink2.created, 0);
  assert.equal(sink2.whole, undefined);
});

test('an abort signal stops the upload with STORAGE_ABORTED and aborts it', async () => {
  const ctrl = new AbortController();
  const sink = new MemorySink({ delay: () => 50 });
  const source = patternStream(60 * MiB, 'abort');
  const budget = new MemoryBudget(64 * MiB);
  setTimeout(() => ctrl.abort(), 30);
  await assert.rejects(
    streamedUpload(source, sink, { key: 'k', budget, plan, concurrency: 2, signal: ctrl.signal }),
    (e) => isLoftError(e, 'STORAGE_ABORTED'),
  );
  assert.equal(sink.aborts.length, 1);
  assert.equal(sink.aborts[0]!.partsInFlight, 0);
  assert.equal(sink.completed, undefined);
  assert.ok(source.destroyed);
  assert.equal(budget.inUse, 0);
});

test('a stalled source does not keep a failed upload waiting', async () => {
  const boom = new Error('server said no');
  // Produces one part and a bit, then never again (until destroyed).
  const source = new Readable({ read() {} });
  source.push(Buffer.alloc(6 * MiB));
  const sink = new MemorySink({ fail: () => boom });
  const t0 = Date.now();
  await assert.rejects(
    streamedUpload(source, sink, {
      key: 'k',
      budget: new MemoryBudget(64 * MiB),
      plan,
      concurrency: 2,
    }),
    (e) => e === boom,
  );
  assert.ok(Date.now() - t0 < 2000);
  assert.ok(source.destroyed);
  assert.equal(sink.aborts.length, 1);
});

test('with the buffer pool, parts reuse buffers and arrive intact', async () => {
  const budget = new MemoryBudget(16 * MiB);
  const pool = new BufferPool(budget);
  const sizes = [21 * MiB + 5, 13 * MiB + 7, 30 * MiB];
  const sinks = sizes.map(() => new MemorySink({ delay: (n) => 3 + (n % 3) * 5 }));
  await Promise.all(
    sizes.map((size, i) =>
      streamedUpload(patternStream(size, `pool${i}`), sinks[i]!, {
        key: `k${i}`,
        budget,
        pool,
        plan,
        concurrency: 3,
      }),
    ),
  );
  for (const [i, size] of sizes.entries()) {
    assert.equal(sha(sinks[i]!.assembled()), sha(await bytesOf(size, `pool${i}`)));
  }
  // 14 parts in all, but never more than 3 buffers of 5 MiB live at once (16 MiB budget).
  assert.ok(pool.allocations <= 4, `${pool.allocations} buffers allocated`);
  assert.ok(budget.peak <= 16 * MiB);
  pool.trim();
});
