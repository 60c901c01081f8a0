/**
 * Worker thread entry: packs store paths. For each job it encodes the path's NAR straight
 * from disk, hashes it (checked against the registered narHash and narSize), compresses it
 * (zstd, or not at all), hashes the output, and streams the compressed bytes back. The NAR
 * itself never crosses to the main thread, which then only uploads.
 *
 * Several jobs share a thread: each is an async loop that waits on disk reads and on
 * credit, so one slow upload never holds the thread.
 */
import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { encodeNar } from '../nix/nar-encode.js';
import { NarListingBuilder } from '../nix/nar-listing.js';
import { NarParser } from '../nix/nar-parse.js';
import { createFsNarSource } from '../store/nar-fs.js';
import { ZstdFrameEncoder } from '../compress/zstd-frame.js';
import type { FromPacker, ToPacker } from './protocol.js';

if (parentPort === null) throw new Error('pack-worker.js must run as a worker thread');
const port = parentPort;

/** Output is batched into messages of about this size (fewer, larger messages). */
const FLUSH_BYTES = 256 * 1024;

interface JobState {
  credit: number;
  wake: (() => void) | undefined;
  cancelled: boolean;
}
const jobs = new Map<number, JobState>();
const source = createFsNarSource();

function post(m: FromPacker, chunks: Uint8Array[] = []): void {
  port.postMessage(
    m,
    chunks.map((c) => c.buffer as ArrayBuffer),
  );
}

async function takeCredit(s: JobState): Promise<void> {
  while (s.credit === 0 && !s.cancelled) {
    await new Promise<void>((r) => (s.wake = r));
  }
  s.credit--;
}

async function run(job: Extract<ToPacker, { t: 'job' }>, s: JobState): Promise<void> {
  const inHash = createHash('sha256');
  const outHash = createHash('sha256');
  let inSize = 0;
  let outSize = 0;
  const encoder = job.zstd ? new ZstdFrameEncoder(job.zstd) : undefined;
  const listing = job.listing ? new NarListingBuilder() : undefined;
  const parser = listing ? new NarParser({ visitor: listing }) : undefined;
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  const keep = (out: Uint8Array[]) => {
    for (const b of out) {
      outHash.update(b);
      outSize += b.length;
      pending.push(b);
      pendingBytes += b.length;
    }
  };
  const mismatch = (sha256: Uint8Array | undefined) =>
    post({
      t: 'mismatch',
      id: job.id,
      expected: job.expect,
      actual: { sha256, size: inSize },
    });
  try {
    for await (const chunk of encodeNar(source, job.path)) {
      if (s.cancelled) return;
      inSize += chunk.length;
      if (inSize > job.expect.size) {
        mismatch(undefined);
        return;
      }
      inHash.update(chunk);
      parser?.push(chunk);
      // zstd output is ours; uncompressed chunks may view a reused buffer: copy them.
      keep(encoder ? encoder.write(chunk) : [Buffer.from(chunk)]);
      if (pendingBytes >= FLUSH_BYTES) {
        await takeCredit(s);
        if (s.cancelled) return;
        const out = pending;
        pending = [];
        pendingBytes = 0;
        post({ t: 'out', id: job.id, chunks: out }, out);
      }
    }
    if (encoder) keep(encoder.end());
    const inputSha256 = inHash.digest();
    if (inSize !== job.expect.size || !inputSha256.equals(Buffer.from(job.expect.sha256))) {
      mismatch(inputSha256);
      return;
    }
    parser?.end();
    const done: FromPacker = {
      t: 'done',
      id: job.id,
      chunks: pending,
      digests: {
        inputSha256,
        inputSize: inSize,
        outputSha256: outHash.digest(),
        outputSize: outSize,
      },
    };
    if (listing) done.listing = listing.toBuffer();
    post(done, pending);
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { code?: string };
    post({
      t: 'error',
      id: job.id,
      message: err instanceof Error ? err.message : String(e),
      code: typeof err.code === 'string' ? err.code : undefined,
      path: typeof err.path === 'string' ? err.path : undefined,
    });
  } finally {
    encoder?.release();
    jobs.delete(job.id);
  }
}

port.on('message', (m: ToPacker) => {
  if (m.t === 'job') {
    const s: JobState = { credit: m.credit, wake: undefined, cancelled: false };
    jobs.set(m.id, s);
    void run(m, s);
    return;
  }
  const s = jobs.get(m.id);
  if (s === undefined) return;
  if (m.t === 'credit') s.credit += m.n;
  else s.cancelled = true;
  const wake = s.wake;
  s.wake = undefined;
  wake?.();
});
