/**
 * A small HTTP/1.1 client for the S3 request path: a keep-alive pool of TCP (or TLS)
 * connections to one server, one request at a time on each. It does what s3-http.ts needs
 * and no more: a request is a head and a body of known length written in one go, the answer
 * is read whole (or, for big GETs, handed on as a stream). node:http does the same with a
 * good deal more machinery per request (a ClientRequest, an IncomingMessage, the agent's
 * bookkeeping, stream state on both), and a push makes hundreds of requests; the CPU that
 * costs is in the README ("Performance").
 *
 * Connections: at most `maxSockets` open; a request takes the most recently freed one
 * (fewer connections stay warm), else opens one, else waits its turn. A connection is
 * reused only after a complete answer that did not say `Connection: close`, and only once
 * the whole request went out; idle ones do not keep the process alive, and one the server
 * closes while idle is dropped. Failures are Node's own network errors (`ECONNRESET`,
 * `EPIPE`, ...); timeouts are `TimeoutError`s; an abort is an `AbortError`.
 */
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { ResponseParser, type ResponseHead } from './http1-response.js';

export interface Http1PoolOptions {
  tls: boolean;
  /** Host name or address to connect to (IPv6 without brackets). */
  host: string;
  port: number;
  maxSockets: number;
  connectTimeoutMs: number;
}

export interface Http1Request {
  method: string;
  /** Path and query, already encoded. */
  path: string;
  /** Header fields as sent; `host` among them. */
  headers: Record<string, string | number>;
  body: readonly Uint8Array[];
  /** Inactivity limit while the request is out. */
  idleTimeoutMs: number;
  signal?: AbortSignal;
  /** Hand a 2xx answer's body on as a stream. */
  stream?: boolean;
}

export interface Http1Response extends ResponseHead {
  body: Buffer;
  stream?: Readable;
}

function timeoutError(what: string): Error {
  return Object.assign(new Error(what), { name: 'TimeoutError', code: 'ETIMEDOUT' });
}

function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error('The operation was aborted'), {
    name: 'AbortError',
    code: 'ABORT_ERR',
    cause: signal.reason,
  });
}

/** The request line and header fields; refuses what would split the head. */
function headOf(req: Http1Request): string {
  let head = `${req.method} ${req.path} HTTP/1.1\r\n`;
  for (const name in req.headers) {
    const value = String(req.headers[name]);
    if (/[\r\n]/.test(name) || /[\r\n]/.test(value)) {
      throw Object.assign(new TypeError(`invalid character in header ${JSON.stringify(name)}`), {
        code: 'ERR_INVALID_CHAR',
      });
    }
    head += `${name}: ${value}\r\n`;
  }
  if (/[\s]/.test(req.path)) {
    throw Object.assign(new TypeError('request path contains unescaped characters'), {
      code: 'ERR_UNESCAPED_CHARACTERS',
    });
  }
  return `${head}connection: keep-alive\r\n\r\n`;
}

export class Http1Pool {
  readonly #o: Http1PoolOptions;
  /** Every open connection, for destroy(). */
  readonly #all = new Set<Socket>();
  /** Free connections, most recently freed last, each with what closes it while idle. */
  readonly #idle: Array<{ socket: Socket; drop: () => void }> = [];
  readonly #waiting: Array<(s: Socket | Error) => void> = [];
  #destroyed = false;

  constructor(o: Http1PoolOptions) {
    this.#o = o;
  }

  /** Send one request; resolves with the answer whatever its status. */
  async request(req: Http1Request): Promise<Http1Response> {
    const { signal } = req;
    if (signal?.aborted) throw abortError(signal);
    const head = headOf(req);
    const socket = await this.#acquire(signal);
    return this.#exchange(socket, head, req);
  }

  /** Close every connection; requests waiting for one fail. */
  destroy(): void {
    this.#destroyed = true;
    this.#idle.length = 0;
    for (const s of this.#all) s.destroy();
    for (const w of this.#waiting.splice(0)) w(new Error('connection pool closed'));
  }

  #acquire(signal: AbortSignal | undefined): Promise<Socket> {
    if (this.#destroyed) return Promise.reject(new Error('connection pool closed'));
    const idle = this.#idle.pop();
    if (idle !== undefined) {
      idle.socket.removeListener('data', idle.drop);
      idle.socket.removeListener('error', idle.drop);
      idle.socket.ref();
      return Promise.resolve(idle.socket);
    }
    if (this.#all.size < this.#o.maxSockets) return this.#connectFor(signal);
    return new Promise<Socket>((resolve, reject) => {
      const onAbort = () => {
        const i = this.#waiting.indexOf(take);
        if (i >= 0) this.#waiting.splice(i, 1);
        reject(abortError(signal!));
      };
      const take = (s: Socket | Error) => {
        signal?.removeEventListener('abort', onAbort);
        if (s instanceof Error) reject(s);
        else resolve(s);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(take);
    });
  }

  /** A new connection, or an abort as soon as the signal says so (the connection then joins the pool). */
  #connectFor(signal: AbortSignal | undefined): Promise<Socket> {
    const made = this.#connect();
    if (signal === undefined) return made;
    return new Promise<Socket>((resolve, reject) => {
      const onAbort = () => {
        reject(abortError(signal));
        made.then(
          (s) => this.#release(s),
          () => {},
        );
      };
      signal.addEventListener('abort', onAbort, { once: true });
      made.then(
        (s) => {
          signal.removeEventListener('abort', onAbort);
          if (!signal.aborted) resolve(s);
        },
        (e: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      );
    });
  }

  #connect(): Promise<Socket> {
    return new Promise<Socket>((resolve, reject) => {
      const { host, port } = this.#o;
      let socket: Socket;
      if (this.#o.tls) {
        // Loaded only for an https endpoint: a plain-http one never pays for TLS.
        const tls = process.getBuiltinModule('node:tls');
        socket = tls.connect({
          host,
          port,
          servername: isIP(host) ? undefined : host,
          ALPNProtocols: ['http/1.1'],
        });
      } else {
        socket = netConnect({ host, port });
      }
      this.#all.add(socket);
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 1000);
      socket.once('close', () => this.#closed(socket));
      const timer = setTimeout(() => {
        socket.destroy(timeoutError(`no connection within ${this.#o.connectTimeoutMs} ms`));
      }, this.#o.connectTimeoutMs);
      const ready = () => {
        clearTimeout(timer);
        socket.removeListener('error', failed);
        socket.removeListener('close', closed);
        resolve(socket);
      };
      const failed = (e: Error) => {
        clearTimeout(timer);
        reject(e);
      };
      // Closed with no error: destroy() while connecting. (After an error, a no-op.)
      const closed = () =>
        failed(
          Object.assign(new Error('connection closed while being made'), { code: 'ECONNRESET' }),
        );
      socket.once(this.#o.tls ? 'secureConnect' : 'connect', ready);
      socket.once('error', failed);
      socket.once('close', closed);
    });
  }

  /** A connection closed (ours or the server's): make room for a request waiting for one. */
  #closed(socket: Socket): void {
    this.#all.delete(socket);
    const i = this.#idle.findIndex((e) => e.socket === socket);
    if (i >= 0) this.#idle.splice(i, 1);
    if (this.#waiting.length > 0 && !this.#destroyed) {
      const next = this.#waiting.shift()!;
      this.#connect().then(next, next);
    }
  }

  #release(socket: Socket): void {
    // A streamed answer's slow reader may have paused it at its last bytes.
    socket.resume();
    const next = this.#waiting.shift();
    if (next !== undefined) {
      next(socket);
      return;
    }
    if (this.#destroyed) {
      socket.destroy();
      return;
    }
    socket.setTimeout(0);
    // Bytes nobody asked for, or an error: the connection is done with. (Its end closes it.)
    const drop = () => socket.destroy();
    socket.on('data', drop);
    socket.on('error', drop);
    socket.unref();
    this.#idle.push({ socket, drop });
  }

  #exchange(socket: Socket, head: string, req: Http1Request): Promise<Http1Response> {
    return new Promise<Http1Response>((resolve, reject) => {
      const { signal } = req;
      let settled = false;
      let sent = false;
      let stream: Readable | undefined;
      const chunks: Buffer[] = [];
      let answer: ResponseHead | undefined;

      const cleanup = () => {
        socket.removeListener('data', onData);
        socket.removeListener('end', onEnd);
        socket.removeListener('error', onError);
        socket.removeListener('close', onClose);
        socket.removeListener('timeout', onTimeout);
        signal?.removeEventListener('abort', onAbort);
      };
      /** Fail the request (or its stream) and close the connection. */
      const fail = (e: Error) => {
        cleanup();
        socket.destroy();
        if (!settled) {
          settled = true;
          reject(e);
        } else if (stream !== undefined && !stream.readableEnded) {
          stream.destroy(e);
        }
      };
      const finish = () => {
        cleanup();
        if (stream !== undefined) {
          stream.push(null);
        } else if (!settled) {
          settled = true;
          const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
          resolve({ ...answer!, body });
        }
      };
      const parser = new ResponseParser(
        {
          head: (h) => {
            answer = h;
            if (req.stream && h.status >= 200 && h.status < 300) {
              stream = new Readable({
                read: () => socket.resume(),
                destroy: (err, cb) => {
                  // The reader stopped early: the rest of the body would desync the connection.
                  if (!parser.done) {
                    cleanup();
                    socket.destroy();
                  }
                  cb(err);
                },
              });
              settled = true;
              resolve({ ...h, body: Buffer.alloc(0), stream });
            }
          },
          body: (c) => {
            if (stream === undefined) chunks.push(c);
            else if (!stream.push(c)) socket.pause();
          },
          end: finish,
        },
        { headRequest: req.method === 'HEAD' },
      );
      /**
       * Once the parser has taken the whole read (bytes after the answer make it unusable),
       * a finished answer frees its connection or closes it.
       */
      const handOn = () => {
        if (!parser.done) return;
        if (parser.reusable && sent) this.#release(socket);
        else socket.destroy();
      };
      const onData = (d: Buffer) => {
        try {
          parser.push(d);
        } catch (e) {
          fail(e as Error);
          return;
        }
        handOn();
      };
      const onEnd = () => {
        try {
          parser.eof();
        } catch (e) {
          fail(e as Error);
          return;
        }
        handOn();
      };
      const onError = (e: Error) => fail(e);
      const onClose = () => {
        if (!parser.done) onEnd();
      };
      const onTimeout = () => fail(timeoutError(`no activity for ${req.idleTimeoutMs} ms`));
      const onAbort = () => fail(abortError(signal!));

      socket.on('data', onData);
      socket.on('end', onEnd);
      socket.on('error', onError);
      socket.on('close', onClose);
      // Inactivity, not total time: a big part on a slow link may take long but never idles.
      socket.setTimeout(req.idleTimeoutMs, onTimeout);
      signal?.addEventListener('abort', onAbort, { once: true });

      // Only once the request is written in full may the connection carry the next one.
      const written = (e?: Error | null) => {
        if (!e) sent = true;
      };
      const last = req.body.length - 1;
      socket.cork();
      socket.write(head, 'latin1', last < 0 ? written : undefined);
      for (let i = 0; i <= last; i++) socket.write(req.body[i]!, i === last ? written : undefined);
      socket.uncork();
    });
  }
}
