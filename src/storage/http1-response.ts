/**
 * An HTTP/1.1 response, parsed from bytes as they arrive, for the S3 request path's own
 * client (http1-client.ts). Pure: bytes in, head/body/end out to a sink; no sockets.
 *
 * What it reads: the status line and header fields (names in lower case; a repeated field's
 * values joined with ", ", as node:http does for the fields S3 sends), interim 1xx answers
 * (skipped), and a body framed by Content-Length, by chunked transfer coding (extensions and
 * trailers read past), or by the connection's end. HEAD answers and 204/304 have no body
 * whatever their Content-Length says.
 */

export interface ResponseHead {
  status: number;
  headers: Record<string, string>;
}

export interface ResponseSink {
  /** The final (non-1xx) head. */
  head(head: ResponseHead): void;
  /** A piece of the body; the buffer may be a view of the bytes pushed. */
  body(chunk: Buffer): void;
  /** The whole response is in. */
  end(): void;
}

/** A response that is not HTTP/1.x as this client reads it. */
export class HttpResponseError extends Error {
  readonly code: string;
  constructor(message: string, code = 'HPE_INVALID_RESPONSE') {
    super(message);
    this.name = 'HttpResponseError';
    this.code = code;
  }
}

/** Node's words for a connection that ends early: before the head, and during the body. */
const hangUp = () =>
  Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }) as Error & { code: string };
const cutShort = () =>
  Object.assign(new Error('response cut short'), { code: 'ECONNRESET' }) as Error & {
    code: string;
  };

/** More head than any S3 answer needs: a server sending this much is not speaking HTTP to us. */
const MAX_HEAD_BYTES = 64 * 1024;
const MAX_LINE_BYTES = 8 * 1024;

type State =
  | 'head'
  | 'length'
  | 'chunk-size'
  | 'chunk-data'
  | 'chunk-crlf'
  | 'trailer'
  | 'until-close'
  | 'done';

export class ResponseParser {
  readonly #sink: ResponseSink;
  readonly #headRequest: boolean;
  #state: State = 'head';
  /** Bytes of an unfinished head or line, kept across pushes. */
  #pending: Buffer | undefined;
  #left = 0;
  #keepAlive = true;
  #extra = false;

  constructor(sink: ResponseSink, opts: { headRequest: boolean }) {
    this.#sink = sink;
    this.#headRequest = opts.headRequest;
  }

  get done(): boolean {
    return this.#state === 'done';
  }

  /** Whether the connection may carry another request once this response is done. */
  get reusable(): boolean {
    return this.#state === 'done' && this.#keepAlive && !this.#extra;
  }

  /** Feed bytes from the connection. Throws HttpResponseError on what is not HTTP. */
  push(data: Buffer): void {
    let at = 0;
    while (at < data.length) {
      switch (this.#state) {
        case 'head':
          at = this.#readHead(data, at);
          break;
        case 'length':
        case 'chunk-data': {
          // A counted run of body bytes: the whole body, or one chunk's data.
          const n = Math.min(this.#left, data.length - at);
          this.#sink.body(data.subarray(at, at + n));
          at += n;
          this.#left -= n;
          if (this.#left > 0) break;
          if (this.#state === 'length') this.#finish();
          else this.#state = 'chunk-crlf';
          break;
        }
        case 'until-close':
          this.#sink.body(at === 0 ? data : data.subarray(at));
          at = data.length;
          break;
        case 'chunk-size':
        case 'chunk-crlf':
        case 'trailer':
          at = this.#readChunkLine(data, at);
          break;
        case 'done':
          // A server that says more than one answer: the connection cannot be trusted again.
          this.#extra = true;
          return;
      }
    }
  }

  /** The connection ended. Completes a body read to the end; otherwise throws ECONNRESET. */
  eof(): void {
    if (this.#state === 'done') return;
    if (this.#state === 'until-close') {
      this.#keepAlive = false;
      this.#finish();
      return;
    }
    throw this.#state === 'head' ? hangUp() : cutShort();
  }

  /** Up to and including the next CRLF, joined with what an earlier push left; or undefined. */
  #line(data: Buffer, at: number, limit: number): { line: Buffer; next: number } | undefined {
    const nl = data.indexOf(10, at);
    if (nl < 0) {
      const rest = data.subarray(at);
      this.#pending = this.#pending ? Buffer.concat([this.#pending, rest]) : Buffer.from(rest);
      if (this.#pending.length > limit) throw new HttpResponseError('response line too long');
      return undefined;
    }
    const piece = data.subarray(at, nl + 1);
    const line = this.#pending ? Buffer.concat([this.#pending, piece]) : piece;
    this.#pending = undefined;
    if (line.length > limit) throw new HttpResponseError('response line too long');
    return { line, next: nl + 1 };
  }

  #readHead(data: Buffer, at: number): number {
    // The head ends at the first empty line; it may have begun in an earlier push.
    const before = this.#pending?.length ?? 0;
    const rest = data.subarray(at);
    const joined = this.#pending ? Buffer.concat([this.#pending, rest]) : rest;
    const end = joined.indexOf('\r\n\r\n', Math.max(0, before - 3), 'latin1');
    if (end < 0 || end > MAX_HEAD_BYTES) {
      if (joined.length > MAX_HEAD_BYTES) {
        throw new HttpResponseError('response head too large', 'HPE_HEADER_OVERFLOW');
      }
      this.#pending = Buffer.from(joined);
      return data.length;
    }
    this.#pending = undefined;
    this.#onHead(joined.toString('latin1', 0, end));
    return at + end + 4 - before;
  }

  #onHead(text: string): void {
    const lines = text.split('\r\n');
    const m = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/.exec(lines[0]!);
    if (!m)
      throw new HttpResponseError(
        `not an HTTP/1.x status line: ${JSON.stringify(lines[0]!.slice(0, 80))}`,
      );
    const minor = Number(m[1]);
    const status = Number(m[2]);
    const headers: Record<string, string> = {};
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      if (colon <= 0)
        throw new HttpResponseError(`bad header line: ${JSON.stringify(line.slice(0, 80))}`);
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      const had = headers[name];
      headers[name] = had === undefined ? value : `${had}, ${value}`;
    }
    // Interim answers (100 Continue and the like) come before the real one.
    if (status >= 100 && status < 200 && status !== 101) return;
    const connection = (headers.connection ?? '').toLowerCase();
    this.#keepAlive =
      minor === 1 ? !/\bclose\b/.test(connection) : /\bkeep-alive\b/.test(connection);
    this.#sink.head({ status, headers });
    if (this.#headRequest || status === 204 || status === 304 || status === 101) {
      this.#finish();
      return;
    }
    const te = headers['transfer-encoding'];
    if (te !== undefined && /\bchunked\s*$/i.test(te)) {
      this.#state = 'chunk-size';
      return;
    }
    const cl = headers['content-length'];
    if (cl !== undefined) {
      if (!/^\d+$/.test(cl))
        throw new HttpResponseError(`bad Content-Length: ${JSON.stringify(cl.slice(0, 40))}`);
      this.#left = Number(cl);
      if (this.#left === 0) this.#finish();
      else this.#state = 'length';
      return;
    }
    this.#state = 'until-close';
  }

  #readChunkLine(data: Buffer, at: number): number {
    const got = this.#line(data, at, MAX_LINE_BYTES);
    if (got === undefined) return data.length;
    const text = got.line.toString('latin1').replace(/\r?\n$/, '');
    if (this.#state === 'chunk-crlf') {
      if (text !== '') throw new HttpResponseError('chunk not followed by CRLF');
      this.#state = 'chunk-size';
    } else if (this.#state === 'chunk-size') {
      const hex = text.split(';', 1)[0]!.trim();
      if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) {
        throw new HttpResponseError(`bad chunk size: ${JSON.stringify(hex.slice(0, 20))}`);
      }
      this.#left = parseInt(hex, 16);
      this.#state = this.#left === 0 ? 'trailer' : 'chunk-data';
    } else if (text === '') {
      this.#finish();
    }
    return got.next;
  }

  #finish(): void {
    this.#state = 'done';
    this.#sink.end();
  }
}
