/**
 * The main-thread side of NAR packing: a pool of packer threads (see defaultPackerThreads)
 * and the stream each job's compressed bytes arrive on. Verification happens in the
 * packer: a NAR whose bytes differ from the registered narHash/narSize makes the stream
 * error with CompressionInputMismatchError instead of ending, so an upload that completes
 * only on a clean end never completes with a corrupt NAR.
 */
import { availableParallelism } from 'node:os';
import { Readable } from 'node:stream';
import { CompressionInputMismatchError } from '../compress/errors.js';
import { digestsFromWire, type CompressionDigests } from '../compress/digests.js';
import { ThreadPool, type ThreadJob, type WorkerThread } from '../compress/thread-pool.js';
import { Hash } from '../nix/hash.js';
import { markReleasable, type TakeBack } from '../util/releasable-buffers.js';
import { FRAME_OUT_BYTES } from '../compress/zstd-frame.js';
import { PackFailedError, PackSourceError } from './errors.js';
import type { FromPacker, ToPacker } from './protocol.js';
import { ownBytes } from '../util/own-bytes.js';

export interface PackRequest {
  /** The store path's directory on disk. */
  path: string;
  /** zstd (at this level), or 'none' to store the NAR as it is. */
  compression: { name: 'zstd'; level: number } | { name: 'none' };
  /** The registered `sha256:<nix32>` narHash and narSize. */
  narHash: string;
  narSize: number;
  /** Also build the `.ls` listing (see PackStream.listing()). */
  listing?: boolean;
}

export interface NarPackerOptions {
  /** Packer threads (default: see defaultPackerThreads). */
  size?: number;
  /** A thread with no job exits after this long (default 30 s). */
  idleMs?: number;
}

/** Errors of the file system that mean "read it another way", not "this NAR is bad". */
const SOURCE_ERRNOS = new Set(['ENOENT', 'EACCES', 'EPERM', 'ENOTDIR', 'ELOOP']);
/** 'out' messages a job may have on their way at once. */
const INITIAL_CREDIT = 2;

const workerUrl = new URL('./pack-worker.js', import.meta.url);

/**
 * One packer per core but one, 1 to 4: the main thread, which sends what they pack, needs
 * a core of its own about as much as a packer does (sending a NAR costs it about what
 * packing it costs a packer), so on 2 cores a second packer only takes turns with it and
 * costs its own start (a Node worker's start is tens of milliseconds of CPU).
 */
export function defaultPackerThreads(cores = availableParallelism()): number {
  return Math.max(1, Math.min(cores - 1, 4));
}

/** One job's compressed bytes, in order; `digests()` and `listing()` once it has ended. */
export class PackStream extends Readable implements ThreadJob<FromPacker> {
  private finalDigests: CompressionDigests | undefined;
  private finalListing: Buffer | undefined;
  private owed = 0;
  private ended = false;

  constructor(
    private readonly thread: WorkerThread<ToPacker, FromPacker>,
    readonly id: number,
    private readonly takeBack: TakeBack,
  ) {
    // Chunks, not bytes: each is one piece of packer output (up to about one 1 MiB read),
    // handed on whole. In byte mode every read of a consumer's async iterator would join
    // the buffered chunks into a fresh copy. Two waiting chunks, plus the messages the
    // packer's credit allows, is about what the 1 MiB of byte mode held.
    super({ objectMode: true, highWaterMark: 2 });
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

  receive(m: FromPacker): void {
    if (this.destroyed) return;
    switch (m.t) {
      case 'out': {
        let room = true;
        for (const c of m.chunks) room = this.push(this.received(c));
        if (room) this.thread.post({ t: 'credit', id: this.id, n: 1 });
        else this.owed++;
        return;
      }
      case 'done':
        this.ended = true;
        this.finalDigests = digestsFromWire(m.digests);
        if (m.listing) this.finalListing = Buffer.from(m.listing);
        for (const c of m.chunks) this.push(this.received(c));
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

  /** The thread is gone (crash, shutdown). */
  fail(err: Error): void {
    this.ended = true;
    this.destroy(err);
  }

  private settle(): void {
    this.thread.detach(this.id);
  }

  /**
   * A chunk as it arrived: transferred, so its ArrayBuffer is this chunk's alone, and the
   * uploader may release it once sent or copied into a part (util/releasable-buffers.ts):
   * a whole frame's output buffer goes back to the thread, anything else is freed.
   */
  private received(c: Uint8Array): Buffer {
    const b = Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    markReleasable(b, c.buffer.byteLength === FRAME_OUT_BYTES ? this.takeBack : undefined);
    return b;
  }
}

/**
 * Hands released output buffers back to the thread that wrote them, in one message per
 * turn of the event loop.
 */
function takeBackTo(thread: WorkerThread<ToPacker, FromPacker>): TakeBack {
  let batch: ArrayBuffer[] = [];
  return (ab) => {
    if (batch.length === 0) {
      setImmediate(() => {
        const buffers = batch;
        batch = [];
        thread.post({ t: 'spare', buffers }, buffers);
      });
    }
    batch.push(ab);
  };
}

export class NarPacker {
  private readonly threads: ThreadPool<ToPacker, FromPacker>;
  private readonly takeBack = new WeakMap<WorkerThread<ToPacker, FromPacker>, TakeBack>();

  /**
   * One NAR is packed by one thread, single-threaded zstd: a closure's many NARs use every
   * core anyway, and zstd's own threads for one big NAR cost ~45 MB of peak RSS (a 1 GiB
   * NAR pushed to RGW: 250 MB instead of 205) for no gain when the upload is the limit.
   */
  constructor(opts: NarPackerOptions = {}) {
    this.threads = new ThreadPool<ToPacker, FromPacker>({
      url: workerUrl,
      size: opts.size ?? defaultPackerThreads(),
      idleMs: opts.idleMs ?? 30_000,
      failure: (cause) =>
        cause === undefined
          ? new PackFailedError('the packer threads were shut down')
          : new PackFailedError(`packer thread failed: ${cause.message}`, cause),
    });
  }

  /** Start packing one store path; read the result from the returned stream. */
  pack(req: PackRequest): PackStream {
    const { id, thread } = this.threads.take();
    let takeBack = this.takeBack.get(thread);
    if (takeBack === undefined) {
      takeBack = takeBackTo(thread);
      this.takeBack.set(thread, takeBack);
    }
    const stream = new PackStream(thread, id, takeBack);
    thread.attach(id, stream);
    thread.post({
      t: 'job',
      id,
      path: req.path,
      zstd: req.compression.name === 'zstd' ? { level: req.compression.level } : undefined,
      expect: { sha256: ownBytes(Hash.parse(req.narHash).digest), size: req.narSize },
      listing: req.listing ?? false,
      credit: INITIAL_CREDIT,
    });
    return stream;
  }

  /** Start the threads `paths` NARs about to be packed will use, ahead of them. */
  warm(paths: number): void {
    this.threads.warm(paths);
  }

  /** Stop every packer thread now; jobs still running fail. Idempotent. */
  shutdown(): Promise<void> {
    return this.threads.shutdown();
  }
}
