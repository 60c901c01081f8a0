/**
 * One connection to the daemon. The daemon serves a connection's requests strictly in
 * order, so requests are pipelined: each is written at once and its reply is read when the
 * replies before it are done. An error the daemon reports (STDERR_ERROR) fails only its
 * request; anything that leaves the byte stream out of step (EOF, a malformed reply, a NAR
 * stream abandoned half-way) kills the connection and fails every request queued on it.
 *
 * Over 400 lines because the request queue, the reply pump, NAR streaming and the kill path
 * share one connection state (in flight, streaming, dead); split, it would be exposed.
 */
import { Readable } from 'node:stream';
import { NarParser } from '../nix/nar-parse.js';
import { parseStorePath, DEFAULT_STORE_DIR } from '../nix/store-path.js';
import type { Logger } from '../util/log.js';
import { nullLogger } from '../util/log.js';
import { unrefSleep } from '../util/limit.js';
import { Op, type ProtocolVersion } from './constants.js';
import {
  DaemonClosedError,
  DaemonConnectionError,
  DaemonOpError,
  DaemonProtocolError,
  DaemonRejectedError,
  DaemonVersionError,
} from './errors.js';
import { clientHandshake, type HandshakeResult } from './handshake.js';
import type { OpSpec } from './ops.js';
import { processStderr, tryReply, type StderrEvent, type StderrHandlers } from './stderr.js';
import { currentUser, type Transport } from './transport.js';
import { WireReader } from './wire-reader.js';
import { WireWriter } from './wire-writer.js';

export interface ConnectionOptions {
  storeDir?: string;
  logger?: Logger;
  /** Every stderr event the daemon sends (log lines, activities, results). */
  onEvent?(event: StderrEvent): void;
}

/** What a pool wants to hear from its connections. */
export interface ConnectionListener {
  /** A request finished (capacity freed). */
  settled(conn: DaemonConnection): void;
  /** The connection is dead or closed; drop it. */
  gone(conn: DaemonConnection): void;
}

export interface NarFromPathResult {
  /** The NAR bytes, exactly as the daemon sends them (not checked against any hash here). */
  stream: Readable;
  /** Settles when the connection is free again (rejects if the stream broke it). */
  done: Promise<void>;
}

const NAR_CHUNK = 256 << 10;

interface Pending<T> {
  op: OpSpec<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
  onFinish: (() => void) | undefined;
}

/** Thrown inside the NAR pump when the consumer destroyed the stream. */
class NarAbandoned extends Error {}

export class DaemonConnection {
  readonly endpoint: string;
  readonly storeDir: string;
  private readonly reader: WireReader;
  private readonly logger: Logger;
  private handshakeResult: HandshakeResult | undefined;
  private readonly queue: Pending<unknown>[] = [];
  private pumping = false;
  private readonly idleWaiters: (() => void)[] = [];
  private readonly handlers: StderrHandlers;
  private inFlight = 0;
  private streaming = false;
  private dead: Error | undefined;
  private closing: Promise<void> | undefined;
  private listener: ConnectionListener | undefined;
  private goneDetail: string | undefined;
  private goneNotified = false;
  private resolveGone!: () => void;
  /** Resolves once the connection is dead, closed or destroyed. */
  readonly whenGone: Promise<void> = new Promise((r) => (this.resolveGone = r));
  private outgoing: Buffer[] = [];

  private constructor(
    private readonly transport: Transport,
    private readonly opts: ConnectionOptions,
  ) {
    this.endpoint = transport.endpoint;
    this.storeDir = opts.storeDir ?? DEFAULT_STORE_DIR;
    this.logger = opts.logger ?? nullLogger;
    const readable = transport.readable;
    this.handlers = { onEvent: (e) => this.event(e), write: (b) => this.write(b) };
    this.reader = new WireReader((what) => this.endError(what), {
      pause: () => readable.pause(),
      resume: () => readable.resume(),
    });
    readable.on('data', (c: Buffer) => this.reader.push(c));
    readable.on('end', () => {
      // Give a child process a moment to report its exit status and stderr.
      void Promise.race([transport.gone, unrefSleep(500).then(() => undefined)]).then((detail) => {
        this.goneDetail ??= detail;
        this.reader.end();
      });
    });
    const onError = (e: Error) => {
      this.kill(new DaemonConnectionError(this.endpoint, e.message, { cause: e }));
    };
    readable.on('error', onError);
    transport.writable.on('error', onError);
    void transport.gone.then((detail) => {
      this.goneDetail ??= detail;
      this.dead ??= new DaemonConnectionError(this.endpoint, this.closedReason());
      this.reader.end();
      this.notifyGone();
    });
  }

  /** Connect over `transport` and do the handshake; the transport is destroyed on failure. */
  static async open(transport: Transport, opts: ConnectionOptions = {}): Promise<DaemonConnection> {
    const conn = new DaemonConnection(transport, opts);
    try {
      conn.handshakeResult = await clientHandshake(conn.reader, (b) => conn.write(b), {
        endpoint: conn.endpoint,
        onEvent: (e) => conn.event(e),
      });
    } catch (e) {
      conn.kill(e as Error);
      throw conn.handshakeError(e);
    }
    conn.logger.debug('nix-daemon connected', {
      endpoint: conn.endpoint,
      protocol: conn.handshakeResult.version,
      nix: conn.handshakeResult.daemonNixVersion,
    });
    return conn;
  }

  /** What the handshake agreed: protocol version, daemon version, trust. */
  get info(): HandshakeResult {
    return this.handshakeResult!;
  }

  get version(): ProtocolVersion {
    return this.info.version;
  }

  /** Requests written and not yet answered. */
  get pending(): number {
    return this.inFlight;
  }

  /** A NAR stream is queued or running: nothing else may be queued behind it. */
  get isStreaming(): boolean {
    return this.streaming;
  }

  /** Dead (broken, closed or destroyed): it takes no more requests. */
  get isDead(): boolean {
    return this.dead !== undefined || this.closing !== undefined;
  }

  setListener(listener: ConnectionListener): void {
    this.listener = listener;
    if (this.goneNotified) listener.gone(this);
  }

  /**
   * Send one request; resolves with its reply. `onFinish` runs when the reply is done, just
   * before listeners hear the connection has capacity again.
   */
  call<T>(op: OpSpec<T>, onFinish?: () => void): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    if (this.closing) return Promise.reject(new DaemonClosedError('closing'));
    const w = new WireWriter();
    op.write(w, this.version);
    this.write(w.toBuffer());
    this.inFlight++;
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ op, resolve, reject, onFinish } as Pending<unknown>);
      if (!this.pumping) void this.pump();
    });
  }

  /**
   * NarFromPath: the daemon sends the NAR unframed after STDERR_LAST, so its end is found by
   * parsing it; bytes after it stay buffered for the next reply. Backpressure reaches the
   * daemon: a stream nobody reads pauses the socket. Destroying the stream before its end
   * kills the connection (the rest of the NAR is still on its way).
   */
  narFromPath(path: string): NarFromPathResult {
    parseStorePath(path, this.storeDir);
    let wanted = true;
    let aborted = false;
    let wake: (() => void) | undefined;
    const poke = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const stream = new Readable({
      highWaterMark: NAR_CHUNK,
      read() {
        wanted = true;
        poke();
      },
      destroy(err, cb) {
        aborted = true;
        poke();
        cb(err);
      },
    });
    const pump = async (r: WireReader) => {
      const parser = new NarParser();
      while (!parser.done) {
        if (aborted) throw new NarAbandoned();
        const c = await r.chunk(NAR_CHUNK, 'NAR data');
        const n = parser.push(c);
        if (n < c.length) r.unread(c.subarray(n));
        if (n > 0 && !stream.push(c.subarray(0, n))) wanted = false;
        while (!wanted && !aborted) await new Promise<void>((res) => (wake = res));
      }
    };
    if (this.dead || this.closing) {
      const err = this.dead ?? new DaemonClosedError('closing');
      stream.destroy(err);
      return { stream, done: Promise.reject(err) };
    }
    this.streaming = true;
    const done = this.call<void>(
      {
        name: 'NarFromPath',
        idempotent: false,
        write: (w) => void w.u64(Op.NarFromPath).string(path),
        read: pump,
      },
      () => (this.streaming = false),
    ).then(
      () => {
        stream.push(null);
      },
      (e: unknown) => {
        const err =
          e instanceof NarAbandoned
            ? new DaemonConnectionError(this.endpoint, 'NAR stream abandoned by its reader')
            : (e as Error);
        if (!stream.destroyed) stream.destroy(err);
        throw err;
      },
    );
    // The pool or caller awaits `done`; keep an unobserved rejection from being fatal.
    done.catch(() => {});
    return { stream, done };
  }

  /** Finish queued requests, then hang up. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.whenIdle();
      this.dead ??= new DaemonClosedError('closed');
      await this.transport.end();
      this.notifyGone();
    })();
    return this.closing;
  }

  /** Hang up now; queued requests fail. Idempotent. */
  destroy(err: Error = new DaemonClosedError('destroyed')): void {
    this.kill(err);
  }

  /**
   * Reads replies in request order. Small replies are parsed synchronously from buffered
   * bytes, so a burst of pipelined replies is handled in one go without a promise per field.
   */
  private async pump(): Promise<void> {
    this.pumping = true;
    const handlers = this.handlers;
    let need = 0;
    try {
      while (this.queue.length > 0) {
        const item = this.queue[0]!;
        if (this.dead) {
          this.finish(item, this.dead);
          continue;
        }
        try {
          const op = item.op;
          if (op.readSync) {
            const t = tryReply(this.reader, this.version, op.name, handlers, op.readSync, need);
            if (!t.done) {
              need = t.need;
              await this.reader.waitFor(need, `the ${op.name} reply`);
              continue;
            }
            need = 0;
            this.finish(item, undefined, t.value);
          } else {
            await processStderr(this.reader, this.version, op.name, handlers);
            this.finish(item, undefined, await op.read!(this.reader, this.version));
          }
        } catch (e) {
          need = 0;
          if (!(e instanceof DaemonOpError)) this.kill(e as Error);
          this.finish(item, e);
        }
      }
    } finally {
      this.pumping = false;
    }
    const idle = this.idleWaiters.splice(0);
    for (const w of idle) w();
  }

  private finish(item: Pending<unknown>, err: unknown, value?: unknown): void {
    this.queue.shift();
    this.inFlight--;
    item.onFinish?.();
    if (err === undefined) item.resolve(value);
    else item.reject(err);
    this.listener?.settled(this);
  }

  /** Resolves when no request is queued or running. */
  private whenIdle(): Promise<void> {
    if (this.queue.length === 0 && !this.pumping) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /**
   * Requests issued in the same tick go out as one buffer in one write: a closure walk
   * sends hundreds at a time, and one syscall for all is much cheaper than one each.
   */
  private write(b: Buffer): void {
    this.outgoing.push(b);
    if (this.outgoing.length === 1) process.nextTick(this.flush);
  }

  private readonly flush = (): void => {
    const parts = this.outgoing;
    this.outgoing = [];
    const w = this.transport.writable;
    if (w.destroyed || parts.length === 0) return;
    w.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
  };

  private kill(e: Error): void {
    if (!this.dead) {
      this.dead =
        e instanceof DaemonConnectionError || e instanceof DaemonClosedError
          ? e
          : new DaemonConnectionError(
              this.endpoint,
              `an earlier reply broke the stream: ${e.message}`,
              {
                cause: e,
              },
            );
      this.logger.debug('nix-daemon connection dropped', {
        endpoint: this.endpoint,
        reason: this.dead.message,
      });
    }
    this.reader.fail(this.dead);
    this.transport.destroy();
    this.notifyGone();
  }

  private notifyGone(): void {
    if (this.goneNotified) return;
    this.goneNotified = true;
    this.resolveGone();
    this.listener?.gone(this);
  }

  private closedReason(): string {
    return this.goneDetail ?? 'the daemon closed the connection';
  }

  private endError(what: string): Error {
    return new DaemonConnectionError(
      this.endpoint,
      `${this.closedReason()} while ${what} was expected`,
    );
  }

  private handshakeError(e: unknown): unknown {
    if (
      e instanceof DaemonVersionError ||
      e instanceof DaemonProtocolError ||
      e instanceof DaemonOpError
    )
      return e;
    if (e instanceof DaemonConnectionError) {
      if (this.transport.kind === 'stdio') {
        return new DaemonRejectedError(this.endpoint, currentUser(), this.closedReason(), {
          hint: 'the stdio transport is for root and single-user installs, where `nix-daemon --stdio` serves the store itself; where a daemon socket exists use the socket transport (transport "auto" does); run `nix-daemon --stdio` by hand to see more',
          cause: e,
        });
      }
      return new DaemonRejectedError(this.endpoint, currentUser(), '', { cause: e });
    }
    return e;
  }

  private event(e: StderrEvent): void {
    this.opts.onEvent?.(e);
    if (e.kind === 'log') this.logger.info(`nix-daemon: ${e.text}`, { endpoint: this.endpoint });
    else if (e.kind === 'start-activity' && e.text) this.logger.debug(`nix-daemon: ${e.text}`);
  }
}
