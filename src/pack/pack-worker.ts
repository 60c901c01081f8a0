/**
 * Worker thread entry: packs store paths. For each job it encodes the path's NAR straight
 * from disk, hashes it (checked against the registered narHash and narSize), compresses it
 * (zstd, or not at all), hashes the output, and streams the compressed bytes back. The NAR
 * itself never crosses to the main thread, which then only uploads.
 *
 * Several jobs share a thread: each is an async loop that waits on disk reads and on
 * credit, so one slow upload never holds the thread.
 */
import { parentPort } from 'node:worker_threads';
import { encodeNar } from '../nix/nar-encode.js';
import { NarListingBuilder } from '../nix/nar-listing.js';
import { NarParser } from '../nix/nar-parse.js';
import { createFsNarSource } from '../store/nar-fs.js';
import { DigestPair } from '../compress/digests.js';
import { FRAME_OUT_BYTES, WholeFrameContexts, ZstdFrameEncoder } from '../compress/zstd-frame.js';
import type { FromPacker, ToPacker } from './protocol.js';
import { ownBytes } from '../util/own-bytes.js';
import { SpareBuffers } from '../util/spare-buffers.js';
import { freeNow } from '../util/releasable-buffers.js';

if (parentPort === null) throw new Error('pack-worker.js must run as a worker thread');
const port = parentPort;

/** Output is batched into messages of about this size (fewer, larger messages). */
const FLUSH_BYTES = 256 * 1024;
/**
 * NARs up to this size are gathered whole and compressed in one call: zstd then sizes its
 * tables and window to the NAR (and records its size in the frame), where a stream costs a
 * context and an output buffer set up for any size, and a thread-pool round trip per
 * chunk, which for a small NAR is most of its packing.
 */
const ONE_CALL_MAX = 1024 * 1024;

interface JobState {
  credit: number;
  wake: (() => void) | undefined;
  cancelled: boolean;
}
const jobs = new Map<number, JobState>();
// Reused read buffers: every chunk is hashed and compressed (or copied) before the next.
const source = createFsNarSource({ reuseBuffers: true });
/**
 * Gather buffers for whole NARs, reused (a fresh one per NAR costs its page faults again).
 * Every job queued on a thread holds one from its start, and a push's uploads (12 at once
 * by default) may all be queued on one thread, so that many are kept. Smaller NARs get a
 * buffer of their own size: small allocations are cheap and soon reused.
 */
const gatherBuffers = new SpareBuffers(ONE_CALL_MAX, 16);
const GATHER_POOLED_MIN = 128 * 1024;
/**
 * Output buffers the main thread gave back once their bytes were sent, written into again
 * (see WholeFrameContexts); beyond about what a thread's jobs have in flight, freed. With
 * one packer thread, that is a push's 12 uploads at once, each some frames of 64 KiB
 * buffers waiting to be sent or answered: 160 (10 MiB).
 */
const spareOutput = new SpareBuffers(FRAME_OUT_BYTES, 160);
/** The same for zstd's contexts and output (see zstd-frame.ts). */
const contexts = new WholeFrameContexts(spareOutput);

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
  // Stored as it is ("none"), the output is the input: hashed once.
  const digests = new DigestPair(!job.zstd);
  const encoder = job.zstd ? new ZstdFrameEncoder(job.zstd, contexts) : undefined;
  const listing = job.listing ? new NarListingBuilder() : undefined;
  const parser = listing ? new NarParser({ visitor: listing }) : undefined;
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  const whole =
    encoder && job.expect.size <= ONE_CALL_MAX ? gatherBuffer(job.expect.size) : undefined;
  let gathered = 0;
  const keep = (out: Uint8Array[]) => {
    for (const b of out) {
      digests.out(b);
      pending.push(b);
      pendingBytes += b.length;
    }
  };
  const mismatch = (sha256: Uint8Array | undefined) =>
    post({
      t: 'mismatch',
      id: job.id,
      expected: job.expect,
      actual: { sha256, size: digests.bytesIn },
    });
  try {
    // A NAR gathered whole is encoded into its buffer, files read straight into it.
    const into = whole?.subarray(0, job.expect.size);
    for await (const chunk of encodeNar(source, job.path, { into })) {
      if (s.cancelled) return;
      if (digests.bytesIn + chunk.length > job.expect.size) {
        digests.in(chunk);
        mismatch(undefined);
        return;
      }
      digests.in(chunk);
      parser?.push(chunk);
      // What is posted is transferred, so it must own its whole ArrayBuffer: zstd output
      // does; an encoder chunk may view a shared or pooled buffer, so "none" copies it.
      if (whole) {
        // Within the registered size (checked above), so it fits; mostly already there.
        if (!(chunk.buffer === whole.buffer && chunk.byteOffset === whole.byteOffset + gathered)) {
          whole.set(chunk, gathered);
        }
        gathered += chunk.length;
      } else keep(encoder ? await encoder.write(chunk) : [ownedCopy(chunk)]);
      if (pendingBytes >= FLUSH_BYTES) {
        await takeCredit(s);
        if (s.cancelled) return;
        const out = pending;
        pending = [];
        pendingBytes = 0;
        post({ t: 'out', id: job.id, chunks: out }, out);
      }
    }
    // Fewer bytes than registered are compressed too; the check below refuses them.
    if (encoder) keep(await encoder.end(whole?.subarray(0, gathered)));
    const d = digests.finish();
    if (d.inputSize !== job.expect.size || !d.inputSha256.equals(job.expect.sha256)) {
      mismatch(d.inputSha256);
      return;
    }
    parser?.end();
    const done: FromPacker = { t: 'done', id: job.id, chunks: pending, digests: d };
    if (listing) done.listing = ownBytes(listing.toBuffer());
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
    if (whole) gatherBuffers.give(whole);
    jobs.delete(job.id);
  }
}

function gatherBuffer(size: number): Buffer {
  return size < GATHER_POOLED_MIN ? Buffer.allocUnsafeSlow(size) : gatherBuffers.take();
}

function ownedCopy(chunk: Uint8Array): Buffer {
  const b = Buffer.allocUnsafeSlow(chunk.length);
  b.set(chunk);
  return b;
}

port.on('message', (m: ToPacker) => {
  if (m.t === 'stop') {
    // Every job stops at its next step; the thread ends once the reads and zlib calls in
    // flight return, with nothing left to listen to.
    for (const s of jobs.values()) {
      s.cancelled = true;
      s.wake?.();
    }
    port.close();
    return;
  }
  if (m.t === 'spare') {
    for (const ab of m.buffers) if (!spareOutput.give(Buffer.from(ab))) freeNow(ab);
    return;
  }
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
