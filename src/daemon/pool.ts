/**
 * A pool of daemon connections. Queries are pipelined onto the least busy connection
 * (up to `maxPipeline` each); a new connection opens for a NAR stream that waits, or for
 * queries once enough wait to be worth one (see QUERY_BACKLOG_PIPELINES); a NAR stream takes
 * a connection of its own for its whole length, and streams never take the last
 * connection, so a query can always get through while streams wait for their readers.
 * Broken connections are dropped and replaced on demand; an idempotent query that fails
 * because its connection broke is retried once on another.
 */
import type { Readable } from 'node:stream';
import type { Logger } from '../util/log.js';
import { nullLogger } from '../util/log.js';
import type { DaemonConnection, ConnectionListener } from './connection.js';
import {
  DaemonClosedError,
  DaemonConnectionError,
  DaemonOptionError,
  DaemonProtocolError,
} from './errors.js';
import type { OpSpec } from './ops.js';

export interface PoolOptions {
  /** Opens a connection (transport + handshake). */
  connect(): Promise<DaemonConnection>;
  /** Connections at most; default 4. */
  maxConnections?: number;
  /** Requests in flight on one connection at most; default 32. */
  maxPipeline?: number;
  logger?: Logger;
}

type Want = 'query' | 'stream';

interface Waiter {
  start(conn: DaemonConnection): void;
  fail(err: Error): void;
}

/**
 * Queries waiting, in pipelines' worth per connection being opened, before another one is
 * opened. A new connection costs the daemon a fork and a handshake, in which the open ones
 * answer a few hundred pipelined queries: a smaller burst (a closure walk's next level) is
 * done sooner without it, and on a busy machine the forks slowed whole walks down.
 */
const QUERY_BACKLOG_PIPELINES = 8;

function positiveInt(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < 1) throw new DaemonOptionError(name, v, 'a positive integer');
  return v;
}

export class DaemonPool implements ConnectionListener {
  readonly maxConnections: number;
  readonly maxPipeline: number;
  private readonly conns = new Set<DaemonConnection>();
  private connecting = 0;
  /** Work waiting for a connection, FIFO, streams and queries apart (a waiting stream must
   * not hold up queries, which any connection can take). */
  private streamWaiters: Waiter[] = [];
  private queryWaiters: Waiter[] = [];
  private state: 'open' | 'closing' | 'closed' = 'open';
  private closed: Promise<void> | undefined;
  private drained: (() => void) | undefined;
  private readonly logger: Logger;

  constructor(private readonly opts: PoolOptions) {
    this.maxConnections = positiveInt('maxConnections', opts.maxConnections, 4);
    this.maxPipeline = positiveInt('maxPipeline', opts.maxPipeline, 32);
    this.logger = opts.logger ?? nullLogger;
  }

  /** Live connections (for stats and tests). */
  get size(): number {
    let n = 0;
    for (const c of this.conns) if (!c.isDead) n++;
    return n;
  }

  /** Run one operation on some connection. */
  run<T>(op: OpSpec<T>): Promise<T> {
    // Fast path: a connection has room and nobody is waiting (the common case in a walk).
    if (this.state === 'open' && this.queryWaiters.length === 0) {
      const c = this.pick('query');
      if (c) return c.call(op).catch((e: unknown) => this.retry(op, e));
    }
    return this.runQueued(op, false).catch((e: unknown) => this.retry(op, e));
  }

  /** Once, on a new connection, if the first one broke under an idempotent operation. */
  private retry<T>(op: OpSpec<T>, e: unknown): Promise<T> {
    const broken = e instanceof DaemonConnectionError || e instanceof DaemonProtocolError;
    if (!broken || !op.idempotent || this.state === 'closed') throw e;
    this.logger.debug('retrying on a new nix-daemon connection', {
      op: op.name,
      reason: (e as Error).message,
    });
    return this.runQueued(op, true);
  }

  private runQueued<T>(op: OpSpec<T>, internal: boolean): Promise<T> {
    return new Promise<T>((resolve, reject) =>
      this.schedule('query', (conn) => conn.call(op).then(resolve, reject), reject, internal),
    );
  }

  /** Requests waiting for a connection. */
  get queued(): number {
    return this.waiting();
  }

  /** Open a connection now (to surface connection errors early). */
  async warmUp(): Promise<void> {
    if (this.size > 0) return;
    const conn = await this.opts.connect();
    this.adopt(conn);
  }

  /** A NAR stream on a connection of its own (see DaemonConnection.narFromPath). */
  narFromPath(path: string): Promise<Readable> {
    return new Promise((resolve, reject) =>
      this.schedule(
        'stream',
        (conn) => {
          try {
            resolve(conn.narFromPath(path).stream);
          } catch (e) {
            reject(e); // a bad path: nothing was sent
          }
        },
        reject,
        false,
      ),
    );
  }

  /** Let queued and running work finish, then close every connection. Idempotent. */
  close(): Promise<void> {
    if (this.closed) return this.closed;
    if (this.state === 'open') this.state = 'closing';
    this.closed = (async () => {
      await new Promise<void>((resolve) => {
        this.drained = resolve;
        this.checkDrained();
      });
      this.state = 'closed';
      await Promise.all([...this.conns].map((c) => c.close()));
      this.conns.clear();
    })();
    return this.closed;
  }

  /** Fail queued work and cut every connection now. Idempotent. */
  destroy(): void {
    if (this.state === 'closed' && this.waiting() === 0 && this.conns.size === 0) return;
    this.state = 'closed';
    this.failWaiters(new DaemonClosedError('destroyed'));
    const err = new DaemonClosedError('destroyed');
    for (const c of [...this.conns]) c.destroy(err);
    this.conns.clear();
    const d = this.drained;
    this.drained = undefined;
    d?.();
  }

  // ConnectionListener
  settled(_conn: DaemonConnection): void {
    this.dispatch();
  }

  gone(conn: DaemonConnection): void {
    this.conns.delete(conn);
    this.dispatch();
  }

  private schedule(
    want: Want,
    start: (c: DaemonConnection) => void,
    fail: (e: Error) => void,
    internal: boolean,
  ) {
    if (this.state === 'closed' || (this.state === 'closing' && !internal)) {
      fail(new DaemonClosedError(this.state === 'closed' ? 'closed' : 'closing'));
      return;
    }
    const queue = want === 'stream' ? this.streamWaiters : this.queryWaiters;
    const c = queue.length === 0 ? this.pick(want) : undefined;
    if (c) start(c);
    else {
      queue.push({ start, fail });
      this.grow();
    }
  }

  private pick(want: Want): DaemonConnection | undefined {
    let best: DaemonConnection | undefined;
    let streams = 0;
    for (const c of this.conns) {
      if (c.isDead) continue;
      if (c.isStreaming) {
        streams++;
        continue;
      }
      if (want === 'query') {
        if (c.pending < this.maxPipeline && (!best || c.pending < best.pending)) best = c;
      } else if (c.pending === 0) {
        best ??= c;
      }
    }
    if (want === 'stream' && this.maxConnections > 1 && streams >= this.maxConnections - 1)
      return undefined;
    return best;
  }

  private dispatch(): void {
    while (this.streamWaiters.length > 0) {
      const c = this.pick('stream');
      if (!c) break;
      this.streamWaiters.shift()!.start(c);
    }
    while (this.queryWaiters.length > 0) {
      const c = this.pick('query');
      if (!c) break;
      this.queryWaiters.shift()!.start(c);
    }
    if (this.waiting() > 0) this.grow();
    this.checkDrained();
  }

  private waiting(): number {
    return this.streamWaiters.length + this.queryWaiters.length;
  }

  private failWaiters(err: Error): void {
    const all = [...this.streamWaiters, ...this.queryWaiters];
    this.streamWaiters = [];
    this.queryWaiters = [];
    for (const w of all) w.fail(err);
  }

  private grow(): void {
    if (this.state === 'closed') return;
    let live = 0;
    let forQueriesNow = 0;
    for (const c of this.conns) {
      if (c.isDead) continue;
      live++;
      if (!c.isStreaming) forQueriesNow++;
    }
    if (live + this.connecting >= this.maxConnections) return;
    const queries = this.queryWaiters.length;
    const needed =
      this.streamWaiters.length > this.connecting ||
      // Nothing open can take a query (none yet, or every one streams a NAR).
      (queries > 0 && forQueriesNow + this.connecting === 0) ||
      queries >= QUERY_BACKLOG_PIPELINES * this.maxPipeline * (this.connecting + 1);
    if (!needed) return;
    this.connecting++;
    this.opts.connect().then(
      (conn) => {
        this.connecting--;
        if (this.state === 'closed') {
          conn.destroy();
          return;
        }
        this.adopt(conn);
      },
      (e: Error) => {
        this.connecting--;
        if (this.state === 'closed') return; // hung up on by close(): nothing waits for it
        if (this.size === 0 && this.connecting === 0) {
          // Nothing can serve the waiters: fail them with the reason (the next call retries).
          this.failWaiters(e);
          this.checkDrained();
        } else {
          this.logger.warn('could not open another nix-daemon connection', { reason: e.message });
        }
      },
    );
  }

  private adopt(conn: DaemonConnection): void {
    this.conns.add(conn);
    conn.setListener(this);
    this.dispatch();
  }

  private checkDrained(): void {
    if (!this.drained || this.waiting() > 0) return;
    for (const c of this.conns) if (c.pending > 0) return;
    const d = this.drained;
    this.drained = undefined;
    d();
  }
}
