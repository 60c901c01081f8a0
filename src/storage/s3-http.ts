/**
 * The lean S3 request path: one signed HTTP request on a keep-alive connection pool
 * (http1-client.ts), and the answer, or an error shaped like the AWS SDK's (status in
 * `$metadata`, the S3 code as `name`/`Code`, headers in `$response`) so `s3-errors.ts`
 * classifies and translates it exactly as it did the SDK's. Network errors leave as Node's
 * own (`ECONNRESET`, ...); timeouts as `TimeoutError`; an abort as Node's `AbortError`.
 *
 * What it keeps from the SDK set-up it replaces: path-style or virtual-host addressing;
 * payload hashes only where they cost nothing (bodies of 64 KiB and more, and every part, go
 * as UNSIGNED-PAYLOAD: the pipeline already hashed every byte); no checksum headers and no
 * `Expect: 100-continue`; extra headers added after signing, so they are not in
 * SignedHeaders; the clock offset corrected from the server's Date when it drifts more than
 * five minutes. Bodies are Buffers, so a retry re-sends the same bytes.
 */
import { Http1Pool, type Http1Response } from './http1-client.js';
import { SigV4Signer, amzDate, canonicalQuery, sha256Hex, uriEncodePath } from './sigv4.js';
import type { CredentialSource } from './s3-credentials.js';
import { xmlText } from './s3-xml.js';

/** Bodies at least this big go as UNSIGNED-PAYLOAD. */
export const UNSIGNED_PAYLOAD_MIN_BYTES = 64 * 1024;
const SKEW_LIMIT_MS = 5 * 60 * 1000;

export interface S3HttpSettings {
  /** Normalised custom endpoint, or undefined for AWS S3. */
  endpoint: string | undefined;
  region: string;
  bucket: string;
  forcePathStyle: boolean;
  credentials: CredentialSource;
  extraHeaders: ReadonlyArray<readonly [string, string]>;
  maxSockets: number;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
}

export interface S3HttpRequest {
  method: 'GET' | 'PUT' | 'POST' | 'HEAD' | 'DELETE';
  /** Object key; undefined for a bucket-level request. */
  key?: string;
  query?: ReadonlyArray<readonly [string, string]>;
  /** Signed headers, names in lower case. */
  headers?: Record<string, string>;
  /** One buffer, or chunks sent in order without joining them. */
  body?: Uint8Array | readonly Uint8Array[];
  /** Send the body's hash as UNSIGNED-PAYLOAD whatever its size (multipart parts). */
  unsignedPayload?: boolean;
  /** Hand a 2xx answer's body on as a stream instead of reading it (big objects). */
  stream?: boolean;
  signal?: AbortSignal;
}

/** The answer as the connection pool gives it (a stream only for a 2xx asked as one). */
export type S3HttpResponse = Http1Response;

/** The error a non-2xx answer (or a 200 with an `<Error>` body) becomes. */
export class S3ServiceError extends Error {
  readonly Code: string;
  readonly $metadata: { httpStatusCode: number; requestId: string | undefined };
  declare readonly $response: { statusCode: number; headers: Record<string, string> };

  constructor(status: number, code: string, message: string | undefined, res: S3HttpResponse) {
    super(message ?? code);
    this.name = code;
    this.Code = code;
    const requestId = res.headers['x-amz-request-id'];
    this.$metadata = {
      httpStatusCode: status,
      requestId: typeof requestId === 'string' ? requestId : undefined,
    };
    // Not enumerable: the headers stay out of logs that print the error.
    Object.defineProperty(this, '$response', {
      value: { statusCode: status, headers: res.headers },
    });
  }
}

/** What a body-less error answer (HEAD) is called, as the SDK names them. */
const STATUS_CODES: Record<number, string> = {
  301: 'PermanentRedirect',
  400: 'BadRequest',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'Conflict',
  411: 'MissingContentLength',
  412: 'PreconditionFailed',
  429: 'TooManyRequests',
  500: 'InternalError',
  501: 'NotImplemented',
  503: 'ServiceUnavailable',
};

export function errorFromResponse(res: S3HttpResponse): S3ServiceError {
  const xml = res.body.length > 0 ? res.body.toString('utf8') : '';
  const code = xmlText(xml, 'Code') ?? STATUS_CODES[res.status] ?? String(res.status);
  return new S3ServiceError(res.status, code, xmlText(xml, 'Message'), res);
}

function isChunks(b: Uint8Array | readonly Uint8Array[]): b is readonly Uint8Array[] {
  return Array.isArray(b);
}

export class S3Http {
  readonly #s: S3HttpSettings;
  readonly #signer: SigV4Signer;
  readonly #pool: Http1Pool;
  readonly #hostHeader: string;
  /** Path prefix: the endpoint's own path, plus `/bucket` for path-style addressing. */
  readonly #basePath: string;
  #clockOffsetMs = 0;
  #creds: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined;

  constructor(s: S3HttpSettings) {
    this.#s = s;
    const url = new URL(s.endpoint ?? `https://s3.${s.region}.amazonaws.com`);
    const pathStyle = s.forcePathStyle;
    const hostname = pathStyle ? url.hostname : `${s.bucket}.${url.hostname}`;
    const https = url.protocol === 'https:';
    this.#hostHeader = url.port ? `${hostname}:${url.port}` : hostname;
    const prefix = url.pathname.replace(/\/+$/, '');
    this.#basePath = pathStyle ? `${prefix}/${uriEncodePath(s.bucket)}` : prefix;
    this.#pool = new Http1Pool({
      tls: https,
      // An IPv6 literal is bracketed in the URL and the Host field, not when connecting.
      host: hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port ? Number(url.port) : https ? 443 : 80,
      maxSockets: s.maxSockets,
      connectTimeoutMs: s.connectTimeoutMs,
    });
    this.#signer = new SigV4Signer(() => this.#creds!);
  }

  get clockOffsetMs(): number {
    return this.#clockOffsetMs;
  }

  /** Send one request; resolves with a 2xx answer, rejects with the failure. */
  async send(req: S3HttpRequest): Promise<S3HttpResponse> {
    this.#creds = await this.#s.credentials();
    const body = req.body;
    const chunks = body === undefined ? [] : isChunks(body) ? body : [body];
    const length = chunks.reduce((n, c) => n + c.length, 0);
    const path =
      req.key === undefined ? this.#basePath || '/' : `${this.#basePath}/${uriEncodePath(req.key)}`;
    const query = req.query ?? [];
    const date = amzDate(Date.now() + this.#clockOffsetMs);
    const payloadHash =
      req.unsignedPayload || length >= UNSIGNED_PAYLOAD_MIN_BYTES
        ? 'UNSIGNED-PAYLOAD'
        : sha256Hex(chunks);
    const signed: Record<string, string> = {
      ...req.headers,
      host: this.#hostHeader,
      'x-amz-date': date,
      'x-amz-content-sha256': payloadHash,
    };
    if (this.#creds.sessionToken) signed['x-amz-security-token'] = this.#creds.sessionToken;
    const { authorization } = this.#signer.sign({
      method: req.method,
      canonicalUri: path,
      query,
      headers: signed,
      payloadHash,
      region: this.#s.region,
      service: 's3',
      amzDate: date,
    });
    const headers: Record<string, string | number> = { ...signed, authorization };
    if (body !== undefined || req.method === 'PUT' || req.method === 'POST') {
      headers['content-length'] = length;
    }
    // After signing: an auth proxy strips these before S3 checks the signature.
    for (const [name, value] of this.#s.extraHeaders) headers[name] = value;
    const qs = canonicalQuery(query);
    const res = await this.#pool.request({
      method: req.method,
      path: qs ? `${path}?${qs}` : path,
      headers,
      body: chunks,
      idleTimeoutMs: this.#s.idleTimeoutMs,
      signal: req.signal,
      stream: req.stream,
    });
    this.#noteServerDate(res.headers.date);
    if (res.status >= 200 && res.status < 300) return res;
    throw errorFromResponse(res);
  }

  // SigV4 rejects requests more than 15 minutes off; follow the server's clock when ours
  // drifts, so the retry of a RequestTimeTooSkewed succeeds.
  #noteServerDate(date: string | undefined): void {
    if (!date) return;
    const server = Date.parse(date);
    if (Number.isNaN(server)) return;
    if (Math.abs(server - (Date.now() + this.#clockOffsetMs)) > SKEW_LIMIT_MS) {
      this.#clockOffsetMs = server - Date.now();
    }
  }

  /**
   * Open up to `n` connections now (each a HEAD of the bucket, answers ignored), so the
   * first uploads do not wait for TCP and TLS handshakes.
   */
  warm(n: number): void {
    for (let i = 0; i < Math.min(n, this.#s.maxSockets); i++) {
      this.send({ method: 'HEAD' }).catch(() => {});
    }
  }

  destroy(): void {
    this.#pool.destroy();
  }
}
