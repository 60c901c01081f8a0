/**
 * Worker threads for jobs that talk to them by message: the zstd pool's sessions and the
 * NAR packers' jobs. A job goes to the thread with the fewest (a new one while the pool has
 * room); threads start lazily, do not keep the process alive while idle (unref), and exit
 * after an idle period. When a thread goes (crash, exit, shutdown), every job on it fails.
 *
 * A thread is never terminated in the middle of a call: to stop one, the pool asks it to
 * (a StopThread message); it drops its jobs and closes its port, and the thread ends once
 * the calls it has in flight return. Only a thread that has not ended after STOP_GRACE_MS
 * (a bug) is terminated.
 */
import { Worker } from 'node:worker_threads';

/** Sent to a thread to make it drop its jobs and exit by itself. */
export interface StopThread {
  t: 'stop';
}

const STOP_GRACE_MS = 10_000;

/** A job on a thread: hears its messages, and fails when the thread goes. */
export interface ThreadJob<Out> {
  receive(m: Out): void;
  fail(err: Error): void;
}

export interface ThreadPoolOptions<Out> {
  url: URL;
  /** Threads at most. */
  size: number;
  /** An idle thread exits after this long. */
  idleMs: number;
  /** Every message, before it reaches its job (e.g. buffers handed back to the pool). */
  onMessage?(m: Out): void;
  /** The error a thread's jobs fail with: `cause` undefined when the pool was shut down. */
  failure(cause: Error | undefined): Error;
}

export class WorkerThread<In, Out extends { id: number }> {
  private readonly worker: Worker;
  readonly jobs = new Map<number, ThreadJob<Out>>();
  private idleTimer: NodeJS.Timeout | undefined;
  private dead = false;
  private stopping = false;

  constructor(private readonly pool: ThreadPool<In, Out>) {
    const opts = pool.options;
    this.worker = new Worker(opts.url);
    this.worker.unref();
    this.worker.on('message', (m: Out) => {
      opts.onMessage?.(m);
      this.jobs.get(m.id)?.receive(m);
    });
    this.worker.on('error', (e) => this.die(e));
    this.worker.on('exit', (code) => this.die(new Error(`worker thread exited with code ${code}`)));
  }

  post(m: In, transfer: ArrayBuffer[] = []): void {
    if (!this.dead) this.worker.postMessage(m, transfer);
  }

  attach(id: number, job: ThreadJob<Out>): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (this.jobs.size === 0) this.worker.ref();
    this.jobs.set(id, job);
  }

  /** The job is done; a thread left with none lets the process exit and goes after a while. */
  detach(id: number): void {
    if (!this.jobs.delete(id) || this.jobs.size > 0 || this.dead) return;
    this.worker.unref();
    this.idleLater();
  }

  /** With no job, go after the idle period (unless a job comes first). */
  idleLater(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => void this.stop(false), this.pool.options.idleMs);
    this.idleTimer.unref();
  }

  /** Ask the thread to stop; its jobs fail now. Resolves when it has ended. */
  terminate(): Promise<void> {
    return this.stop(true);
  }

  /**
   * `wait`: keep the process alive until the thread has ended (a shutdown someone awaits);
   * an idle thread going away on its own must not hold the process.
   */
  private async stop(wait: boolean): Promise<void> {
    this.stopping = true;
    clearTimeout(this.idleTimer);
    this.pool.forget(this);
    if (this.dead) return;
    const ended = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    if (wait) this.worker.ref();
    const stop: StopThread = { t: 'stop' };
    this.worker.postMessage(stop);
    this.die(new Error('stopped'));
    const force = setTimeout(() => void this.worker.terminate(), STOP_GRACE_MS);
    force.unref();
    await ended;
    clearTimeout(force);
  }

  private die(cause: Error): void {
    if (this.dead) return;
    this.dead = true;
    clearTimeout(this.idleTimer);
    this.pool.forget(this);
    const jobs = [...this.jobs.values()];
    this.jobs.clear();
    const err = this.pool.options.failure(this.stopping ? undefined : cause);
    for (const j of jobs) j.fail(err);
  }
}

export class ThreadPool<In, Out extends { id: number }> {
  private readonly threads: WorkerThread<In, Out>[] = [];
  private nextId = 1;

  constructor(readonly options: ThreadPoolOptions<Out>) {}

  /** A fresh job id and the thread to run it on. */
  take(): { id: number; thread: WorkerThread<In, Out> } {
    let best: WorkerThread<In, Out> | undefined;
    for (const t of this.threads) {
      if (best === undefined || t.jobs.size < best.jobs.size) best = t;
    }
    if (best === undefined || (best.jobs.size > 0 && this.threads.length < this.options.size)) {
      best = new WorkerThread(this);
      this.threads.push(best);
    }
    return { id: this.nextId++, thread: best };
  }

  /**
   * Start threads now, up to `n` in all (at most the pool's size), for jobs about to come: a
   * thread takes a while to start, which a caller can spend waiting for something else.
   * Unused, they go after the idle period like any idle thread.
   */
  warm(n: number): void {
    while (this.threads.length < Math.min(n, this.options.size)) {
      const t = new WorkerThread(this);
      this.threads.push(t);
      t.idleLater();
    }
  }

  /** Stop every thread now; jobs still running fail. The pool stays usable. */
  async shutdown(): Promise<void> {
    await Promise.all([...this.threads].map((t) => t.terminate()));
  }

  stats(): { threads: number; jobs: number } {
    let jobs = 0;
    for (const t of this.threads) jobs += t.jobs.size;
    return { threads: this.threads.length, jobs };
  }

  /** @internal A thread calls this when it is gone. */
  forget(t: WorkerThread<In, Out>): void {
    const i = this.threads.indexOf(t);
    if (i >= 0) this.threads.splice(i, 1);
  }
}
