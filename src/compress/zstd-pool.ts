/**
 * A small pool of worker threads that run zstd for every compressor in the process.
 * Each worker hosts many sessions (one per NAR being compressed), so a slow upload never
 * holds a thread hostage from the others; a new session goes to the worker with the
 * fewest. Workers start lazily, are reused across NARs, do not keep the process alive
 * while idle (unref), and exit after an idle period so an idle service holds no zstd
 * memory.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { CompressionFailedError } from './errors.js';
import type { FromWorker, SessionDigests, ToWorker, ZstdSessionParams } from './zstd-protocol.js';

/** What a session's owner (the compressor stream) hears from its worker. */
export interface SessionSink {
  onOutput(out: Buffer[], ended: boolean, digests?: SessionDigests): void;
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
  /**
   * zstd threads for a boosted session (default: cores, at most 4). While fewer than
   * `maxBoosted` sessions are boosted, a new session is: a lone big NAR then uses every
   * core, while many concurrent NARs (which fill the pool anyway) cost no extra memory.
   */
  boostThreads?: number;
  /** Boosted sessions at once (default 1; 0 turns boosting off). */
  maxBoosted?: number;
  /**
   * Input per zstd job in a boosted session (default 2 MiB). zstd's own default at level
   * 3 is 8 MiB. Measured here on 512 MiB of system files (one stream, whole process
   * peak RSS / size ratio): 8 MiB 165 MiB / 0.358, 4 MiB 139 / 0.363, 2 MiB 128 / 0.371,
   * no threads 112 / 0.360; speed differences were within the machine's noise. In the
   * whole pipeline (a 1 GiB incompressible NAR pushed to RGW) 4 MiB peaked at 248-261 MB
   * RSS and 2 MiB at 200 MB, against a 250 MB budget, so 2 MiB: 2% larger output.
   */
  boostJobSize?: number;
  /** Size of the input batches streams send (default 512 KiB). */
  batchBytes?: number;
}

/** Spare batch buffers kept for reuse, pool-wide. */
const MAX_FREE_BUFFERS = 16;

export interface ZstdPoolStats {
  workers: number;
  sessions: number;
  boosted: number;
}

const workerUrl = new URL('./zstd-worker.js', import.meta.url);

class PoolWorker {
  readonly worker: Worker;
  readonly sessions = new Map<number, SessionSink>();
  private idleTimer: NodeJS.Timeout | undefined;
  private dead = false;
  private stopping = false;

  constructor(
    private readonly pool: ZstdPool,
    private readonly idleMs: number,
  ) {
    this.worker = new Worker(workerUrl);
    this.worker.unref();
    this.worker.on('message', (m: FromWorker) => this.onMessage(m));
    this.worker.on('error', (e) => this.die(e));
    this.worker.on('exit', (code) => this.die(new Error(`worker thread exited with code ${code}`)));
  }

  private onMessage(m: FromWorker): void {
    if (m.t === 'out' && m.input !== undefined) this.pool.giveBuffer(m.input.buffer as ArrayBuffer);
    const sink = this.sessions.get(m.id);
    if (sink === undefined) return; // closed meanwhile: its late output is dropped
    if (m.t === 'error') {
      this.detach(m.id);
      sink.onError(new CompressionFailedError('zstd', m.message));
      return;
    }
    if (m.ended) this.detach(m.id);
    sink.onOutput(
      m.out.map((u) => Buffer.from(u.buffer, u.byteOffset, u.byteLength)),
      m.ended,
      m.digests,
    );
  }

  /** The thread is gone (crash, exit, terminate): every session on it fails. */
  private die(cause: Error): void {
    if (this.dead) return;
    this.dead = true;
    clearTimeout(this.idleTimer);
    this.pool.forget(this);
    const sinks = [...this.sessions.values()];
    this.sessions.clear();
    const err = this.stopping
      ? new CompressionFailedError('zstd', 'the compression workers were shut down')
      : new CompressionFailedError('zstd', `worker thread failed: ${cause.message}`, cause);
    for (const s of sinks) s.onError(err);
  }

  attach(id: number, sink: SessionSink): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (this.sessions.size === 0) this.worker.ref();
    this.sessions.set(id, sink);
  }

  detach(id: number): void {
    if (!this.sessions.delete(id) || this.sessions.size > 0 || this.dead) return;
    this.worker.unref();
    this.idleTimer = setTimeout(() => void this.terminate(), this.idleMs);
    this.idleTimer.unref();
  }

  post(m: ToWorker, transfer: ArrayBuffer[] = []): void {
    if (!this.dead) this.worker.postMessage(m, transfer);
  }

  async terminate(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.idleTimer);
    this.pool.forget(this);
    await this.worker.terminate();
  }
}

export class ZstdPool {
  readonly size: number;
  private readonly idleMs: number;
  private readonly boostThreads: number;
  private readonly maxBoosted: number;
  private readonly boostJobSize: number | undefined;
  private readonly workers: PoolWorker[] = [];
  private readonly boostedIds = new Set<number>();
  private readonly freeBuffers: ArrayBuffer[] = [];
  private nextId = 1;
  readonly batchBytes: number;

  constructor(opts: ZstdPoolOptions = {}) {
    const cores = Math.max(1, Math.min(availableParallelism(), 4));
    this.size = opts.size ?? cores;
    this.idleMs = opts.idleMs ?? 30_000;
    this.boostThreads = opts.boostThreads ?? (cores > 1 ? cores : 0);
    this.maxBoosted = opts.maxBoosted ?? 1;
    this.boostJobSize = opts.boostJobSize ?? 2 * 1024 * 1024;
    this.batchBytes = opts.batchBytes ?? 512 * 1024;
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

  /**
   * Open a session on the least-loaded worker (starting one if the pool has room).
   * `whole` says the first message will carry all the input: never worth boosting.
   */
  open(level: number, whole: boolean, sink: SessionSink, digests = false): ZstdSession {
    const w = this.pick();
    const id = this.nextId++;
    let nbWorkers = 0;
    if (!whole && this.boostThreads > 0 && this.boostedIds.size < this.maxBoosted) {
      nbWorkers = this.boostThreads;
      this.boostedIds.add(id);
    }
    const params: ZstdSessionParams = { level, nbWorkers };
    if (digests) params.digests = true;
    if (nbWorkers > 0 && this.boostJobSize !== undefined) params.jobSize = this.boostJobSize;
    w.attach(id, {
      onOutput: (out, ended, d) => {
        if (ended) this.boostedIds.delete(id);
        sink.onOutput(out, ended, d);
      },
      onError: (err) => {
        this.boostedIds.delete(id);
        sink.onError(err);
      },
    });
    const boostedIds = this.boostedIds;
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
        const transfer = chunk !== undefined ? [chunk.buffer as ArrayBuffer] : [];
        w.post(m, transfer);
        if (end) closed = true;
      },
      close() {
        boostedIds.delete(id);
        if (closed && !w.sessions.has(id)) return;
        closed = true;
        if (w.sessions.has(id)) {
          w.post({ t: 'close', id });
          w.detach(id);
        }
      },
    };
  }

  private pick(): PoolWorker {
    let best: PoolWorker | undefined;
    for (const w of this.workers) {
      if (best === undefined || w.sessions.size < best.sessions.size) best = w;
    }
    if (best === undefined || (best.sessions.size > 0 && this.workers.length < this.size)) {
      best = new PoolWorker(this, this.idleMs);
      this.workers.push(best);
    }
    return best;
  }

  /** @internal PoolWorker calls this when its thread is gone. */
  forget(w: PoolWorker): void {
    const i = this.workers.indexOf(w);
    if (i >= 0) this.workers.splice(i, 1);
  }

  stats(): ZstdPoolStats {
    let sessions = 0;
    for (const w of this.workers) sessions += w.sessions.size;
    return { workers: this.workers.length, sessions, boosted: this.boostedIds.size };
  }

  /**
   * Stop every worker now. Streams still compressing fail with COMPRESSION_FAILED. The
   * pool stays usable: a later compressor starts a fresh worker.
   */
  async shutdown(): Promise<void> {
    await Promise.all([...this.workers].map((w) => w.terminate()));
  }
}
