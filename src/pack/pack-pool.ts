/**
 * The main-thread side of NAR packing: a pool of packer threads (one per core, up to 4)
 * and the stream each job's compressed bytes arrive on. Verification happens in the
 * packer: a NAR whose bytes differ from the registered narHash/narSize makes the stream
 * error with CompressionInputMismatchError instead of ending, so an upload that completes
 * only on a clean end never completes with a corrupt NAR.
 */
import { availableParallelism } from 'node:os';
import { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { CompressionInputMismatchError } from '../compress/errors.js';
import type { CompressionDigests } from '../compress/digests.js';
import { Hash } from '../nix/hash.js';
import { PackFailedError, PackSourceError } from './errors.js';
import type { FromPacker, PackDigests, ToPacker } from './protocol.js';

export interface PackRequest {
  /** The store path's directory on disk. */
  path: string;
  /** 'none' stores the NAR as it is. */
  compression: 'zstd' | 'none';
  /** zstd level (default 3). */
  level?: number;
  /** The registered `sha256:<nix32>` narHash and narSize. */
  narHash: string;
  narSize: number;
  /** Also build the `.ls` listing (see PackStream.listing()). */
  listing?: boolean;
}

export interface NarPackerOptions {
  /** Packer threads (default: cores, at most 4). */
  size?: number;
  /** A thread with no job exits after this long (default 30 s). */
  idleMs?: number;
}

/** Errors of the file system that mean "read it another way", not "this NAR is bad". */
const SOURCE_ERRNOS = new Set(['ENOENT', 'EACCES', 'EPERM', 'ENOTDIR', 'ELOOP']);
/** 'out' messages a job may have on their way at once. */
const INITIAL_CREDIT = 2;
const DEFAULT_LEVEL = 3;

const workerUrl = new URL('./pack-worker.js', import.meta.url);

function digestsOf(d: PackDigests): CompressionDigests {
  return {
    inputSha256: Buffer.from(d.inputSha256),
    inputSize: d.inputSize,
    outputSha256: Buffer.from(d.outputSha256),
    outputSize: d.outputSize,
  };
}

/** One job's compressed bytes, in order; `digests()` and `listing()` once it has ended. */
export class PackStream extends Readable {
  private finalDigests: CompressionDigests | undefined;
  private finalListing: Buffer | undefined;
  private owed = 0;
  private ended = false;

  constructor(
    private readonly thread: PackThread,
    readonly id: number,
    private readonly onSettled: () => void,
  ) {
    super({ highWaterMark: 1024 * 1024 });
  }

  digests(): CompressionDigests | undefined {
    return this.finalDigests;
  }

  listing(): Buffer | undefined {
    return this.finalListing;
  }

  override _read(): void {
    // Credit the packer for what it sent while we were full.
    if (this.owed > 0) {
      this.thread.post({ t: 'credit', id: this.id, n: this.owed });
      this.owed = 0;
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.ended) this.thread.post({ t: 'cancel', id: this.id });
    this.settle();
    cb(err);
  }

  /** @internal */
  receive(m: FromPacker): void {
    if (this.destroyed) return;
    switch (m.t) {
      case 'out': {
        let room = true;
        for (const c of m.chunks)
          room = this.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength));
        if (room) this.thread.post({ t: 'credit', id: this.id, n: 1 });
        else this.owed++;
        return;
      }
      case 'done':
        this.ended = true;
        this.finalDigests = digestsOf(m.digests);
        if (m.listing) this.finalListing = Buffer.from(m.listing);
        for (const c of m.chunks) this.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength));
        this.push(null);
        this.settle();
        return;
      case 'mismatch':
        this.ended = true;
        this.destroy(
          new CompressionInputMismatchError(
            { sha256: Buffer.from(m.expected.sha256), size: m.expected.size },
            {
              sha256: m.actual.sha256 === undefined ? undefined : Buffer.from(m.actual.sha256),
              size: m.actual.size,
            },
          ),
        );
        return;
      case 'error':
        this.ended = true;
        this.destroy(
          m.code !== undefined && SOURCE_ERRNOS.has(m.code)
            ? new PackSourceError(m.path ?? '(store path)', m.code, m.message)
            : new PackFailedError(m.message),
        );
        return;
    }
  }

  /** @internal The thread is gone. */
  fail(err: Error): void {
    this.ended = true;
    this.destroy(err);
  }

  private settled = false;
  private settle(): void {
    if (this.settled) return;
    this.settled = true;
    this.onSettled();
  }
}

class PackThread {
  readonly worker: Worker;
  readonly streams = new Map<number, PackStream>();
  private idleTimer: NodeJS.Timeout | undefined;
  private dead = false;

  constructor(
    private readonly pool: NarPacker,
    private readonly idleMs: number,
  ) {
    this.worker = new Worker(workerUrl);
    this.worker.unref();
    this.worker.on('message', (m: FromPacker) => this.streams.get(m.id)?.receive(m));
    this.worker.on('error', (e) => this.die(e));
    this.worker.on('exit', (code) => this.die(new Error(`packer thread exited with code ${code}`)));
  }

  post(m: ToPacker): void {
    if (!this.dead) this.worker.postMessage(m);
  }

  attach(s: PackStream): void {
    clearTimeout(this.idleTimer);
    if (this.streams.size === 0) this.worker.ref();
    this.streams.set(s.id, s);
  }

  detach(id: number): void {
    if (!this.streams.delete(id) || this.streams.size > 0 || this.dead) return;
    // No job: the thread must not keep the process alive, and goes after a while.
    this.worker.unref();
    this.idleTimer = setTimeout(() => void this.terminate(), this.idleMs);
    this.idleTimer.unref();
  }

  private die(cause: Error): void {
    if (this.dead) return;
    this.dead = true;
    clearTimeout(this.idleTimer);
    this.pool.forget(this);
    const streams = [...this.streams.values()];
    this.streams.clear();
    for (const s of streams)
      s.fail(new PackFailedError(`packer thread failed: ${cause.message}`, cause));
  }

  async terminate(): Promise<void> {
    clearTimeout(this.idleTimer);
    this.pool.forget(this);
    this.dead = true;
    await this.worker.terminate();
  }
}

export class NarPacker {
  readonly size: number;
  private readonly idleMs: number;
  private readonly threads: PackThread[] = [];
  private nextId = 1;

  /**
   * One NAR is packed by one thread, single-threaded zstd: a closure's many NARs use every
   * core anyway, and zstd's own threads for one big NAR cost ~45 MB of peak RSS (a 1 GiB
   * NAR pushed to RGW: 250 MB instead of 205) for no gain when the upload is the limit.
   */
  constructor(opts: NarPackerOptions = {}) {
    this.size = opts.size ?? Math.max(1, Math.min(availableParallelism(), 4));
    this.idleMs = opts.idleMs ?? 30_000;
  }

  /** Start packing one store path; read the result from the returned stream. */
  pack(req: PackRequest): PackStream {
    const thread = this.pick();
    const id = this.nextId++;
    const stream = new PackStream(thread, id, () => thread.detach(id));
    thread.attach(stream);
    thread.post({
      t: 'job',
      id,
      path: req.path,
      zstd: req.compression === 'zstd' ? { level: req.level ?? DEFAULT_LEVEL } : undefined,
      expect: { sha256: Hash.parse(req.narHash).digest, size: req.narSize },
      listing: req.listing ?? false,
      credit: INITIAL_CREDIT,
    });
    return stream;
  }

  /** Stop every packer thread now; jobs still running fail. Idempotent. */
  async shutdown(): Promise<void> {
    await Promise.all([...this.threads].map((t) => t.terminate()));
  }

  /** @internal */
  forget(t: PackThread): void {
    const i = this.threads.indexOf(t);
    if (i >= 0) this.threads.splice(i, 1);
  }

  private pick(): PackThread {
    let best: PackThread | undefined;
    for (const t of this.threads) {
      if (best === undefined || t.streams.size < best.streams.size) best = t;
    }
    if (best === undefined || (best.streams.size > 0 && this.threads.length < this.size)) {
      best = new PackThread(this, this.idleMs);
      this.threads.push(best);
    }
    return best;
  }
}
