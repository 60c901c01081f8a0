/**
 * The zstd worker threads behind every compressor stream in the process (the daemon path
 * of a push: xz aside, NARs are normally packed by src/pack). Each thread hosts many
 * sessions (one per NAR), so a slow upload never holds a thread hostage; threads are
 * shared, lazy and idle-exiting (see thread-pool.ts). Sessions are single-threaded zstd:
 * concurrent NARs use the cores, and zstd's own threads for one NAR cost tens of MiB.
 */
import { availableParallelism } from 'node:os';
import { CompressionFailedError } from './errors.js';
import { ThreadPool, type ThreadJob, type WorkerThread } from './thread-pool.js';
import type { WireDigests } from './digests.js';
import type { FromWorker, ToWorker, ZstdSessionParams } from './zstd-protocol.js';

/** What a session's owner (the compressor stream) hears from its worker. */
export interface SessionSink {
  onOutput(out: Buffer[], ended: boolean, digests?: WireDigests): void;
  onError(err: Error): void;
}

/** A compressor's handle on its session. */
export interface ZstdSession {
  /**
   * Send input: a view from offset 0 of a buffer from takeBuffer(), whose ArrayBuffer is
   * transferred (the worker hands it back); `end` finishes the frame.
   */
  send(chunk: Buffer | undefined, end: boolean): void;
  /** Drop the session now (stream destroyed); idempotent. */
  close(): void;
}

export interface ZstdPoolOptions {
  /** Worker threads at most. Default: available cores, at most 4. */
  size?: number;
  /** An idle worker exits after this long. Default 30 s. */
  idleMs?: number;
  /** Size of the input batches streams send (default 512 KiB). */
  batchBytes?: number;
}

/** Spare batch buffers kept for reuse, pool-wide. */
const MAX_FREE_BUFFERS = 16;

const workerUrl = new URL('./zstd-worker.js', import.meta.url);

export class ZstdPool {
  readonly batchBytes: number;
  private readonly threads: ThreadPool<ToWorker, FromWorker>;
  private readonly freeBuffers: ArrayBuffer[] = [];

  constructor(opts: ZstdPoolOptions = {}) {
    this.batchBytes = opts.batchBytes ?? 512 * 1024;
    this.threads = new ThreadPool<ToWorker, FromWorker>({
      url: workerUrl,
      size: opts.size ?? Math.max(1, Math.min(availableParallelism(), 4)),
      idleMs: opts.idleMs ?? 30_000,
      // Input buffers come back with every reply, even for sessions closed meanwhile.
      onMessage: (m) => {
        if (m.t === 'out' && m.input !== undefined) this.giveBuffer(m.input.buffer as ArrayBuffer);
      },
      failure: (cause) =>
        cause === undefined
          ? new CompressionFailedError('zstd', 'the compression workers were shut down')
          : new CompressionFailedError('zstd', `worker thread failed: ${cause.message}`, cause),
    });
  }

  /**
   * A batch buffer that owns its whole ArrayBuffer (so it can be transferred). Reusing
   * them keeps memory flat: freshly allocated ones are freed only when V8 gets around to
   * collecting them, which on a fast stream lags by tens of MiB.
   */
  takeBuffer(): Buffer {
    const ab = this.freeBuffers.pop();
    return ab !== undefined ? Buffer.from(ab) : Buffer.allocUnsafeSlow(this.batchBytes);
  }

  giveBuffer(ab: ArrayBuffer): void {
    if (ab.byteLength === this.batchBytes && this.freeBuffers.length < MAX_FREE_BUFFERS) {
      this.freeBuffers.push(ab);
    }
  }

  /** Open a session on the least-loaded worker (starting one if the pool has room). */
  open(level: number, sink: SessionSink, expectInput: boolean): ZstdSession {
    const { id, thread } = this.threads.take();
    const params: ZstdSessionParams = { level, digests: expectInput };
    thread.attach(id, sessionJob(thread, id, sink));
    let opened = false;
    let closed = false;
    return {
      send(chunk, end) {
        if (closed) return;
        const m: ToWorker = { t: 'data', id, end };
        if (!opened) m.open = params;
        opened = true;
        if (chunk !== undefined) m.chunk = chunk;
        // The chunk views a batch buffer from takeBuffer(): ours to move, whole.
        thread.post(m, chunk !== undefined ? [chunk.buffer as ArrayBuffer] : []);
        if (end) closed = true;
      },
      close() {
        if (closed && !thread.jobs.has(id)) return;
        closed = true;
        if (thread.jobs.has(id)) {
          thread.post({ t: 'close', id });
          thread.detach(id);
        }
      },
    };
  }

  stats(): { workers: number; sessions: number } {
    const s = this.threads.stats();
    return { workers: s.threads, sessions: s.jobs };
  }

  /**
   * Stop every worker now. Streams still compressing fail with COMPRESSION_FAILED. The
   * pool stays usable: a later compressor starts a fresh worker.
   */
  shutdown(): Promise<void> {
    return this.threads.shutdown();
  }
}

function sessionJob(
  thread: WorkerThread<ToWorker, FromWorker>,
  id: number,
  sink: SessionSink,
): ThreadJob<FromWorker> {
  return {
    receive(m) {
      if (m.t === 'error') {
        thread.detach(id);
        sink.onError(new CompressionFailedError('zstd', m.message));
        return;
      }
      if (m.ended) thread.detach(id);
      sink.onOutput(
        m.out.map((u) => Buffer.from(u.buffer, u.byteOffset, u.byteLength)),
        m.ended,
        m.digests,
      );
    },
    fail: (err) => sink.onError(err),
  };
}
