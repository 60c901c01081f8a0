/**
 * AWS Signature Version 4 (header form) over node:crypto, for the lean S3 request path.
 * Pure: the caller gives the canonical URI, the query, the headers to sign, the payload hash
 * and the time, and gets the Authorization header value. Checked against AWS's published
 * SigV4 test-suite vectors (test/unit/storage/sigv4.test.ts).
 *
 * The signing key depends only on the secret, the day, the region and the service, so it is
 * cached: a request then costs two sha256 passes over a few hundred bytes and one HMAC.
 */
import { createHash, createHmac } from 'node:crypto';

export interface SigningCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface SignInput {
  method: string;
  /** Already URI-encoded path, e.g. `/bucket/nar/abc.nar.zst` (S3: no normalisation). */
  canonicalUri: string;
  /** Query parameters, unencoded; sorted and encoded here. */
  query: ReadonlyArray<readonly [string, string]>;
  /** Headers to sign, names in lower case; values are trimmed and inner spaces collapsed. */
  headers: Readonly<Record<string, string>>;
  /** Hex sha256 of the body, or `UNSIGNED-PAYLOAD`. */
  payloadHash: string;
  region: string;
  service: string;
  /** `YYYYMMDDTHHMMSSZ` */
  amzDate: string;
}

export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** RFC 3986 encoding as SigV4 wants it: everything but A-Z a-z 0-9 - _ . ~ is %XX. */
export function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** A key as a path: each segment encoded, slashes kept. */
export function uriEncodePath(key: string): string {
  return key.split('/').map(uriEncode).join('/');
}

/** The query string both for the wire and for the canonical request (same encoding). */
export function canonicalQuery(query: ReadonlyArray<readonly [string, string]>): string {
  return query
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

let lastSecond = NaN;
let lastStamp = '';

/** `YYYYMMDDTHHMMSSZ`, formatted once per second (every request asks for it). */
export function amzDate(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== lastSecond) {
    lastStamp = new Date(second * 1000)
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d{3}/, '');
    lastSecond = second;
  }
  return lastStamp;
}

/** SHA-256 in hex of a string, a buffer, or chunks taken in order (a body never joined). */
export function sha256Hex(data: string | Uint8Array | readonly Uint8Array[]): string {
  const h = createHash('sha256');
  if (Array.isArray(data)) for (const c of data as readonly Uint8Array[]) h.update(c);
  else h.update(data as string | Uint8Array);
  return h.digest('hex');
}

export interface SignedParts {
  authorization: string;
  canonicalRequest: string;
  stringToSign: string;
}

/** Signs with one set of credentials; keeps the derived key of the current scope. */
export class SigV4Signer {
  #keyScope = '';
  #key: Buffer | undefined;

  constructor(private readonly creds: () => SigningCredentials) {}

  sign(input: SignInput): SignedParts {
    const creds = this.creds();
    const names = Object.keys(input.headers).sort();
    let canonicalHeaders = '';
    for (const n of names) {
      canonicalHeaders += `${n}:${input.headers[n]!.trim().replace(/\s+/g, ' ')}\n`;
    }
    const signedHeaders = names.join(';');
    const canonicalRequest = [
      input.method,
      input.canonicalUri,
      canonicalQuery(input.query),
      canonicalHeaders,
      signedHeaders,
      input.payloadHash,
    ].join('\n');
    const day = input.amzDate.slice(0, 8);
    const scope = `${day}/${input.region}/${input.service}/aws4_request`;
    const stringToSign = [
      'AWS4-HMAC-SHA256',
      input.amzDate,
      scope,
      sha256Hex(canonicalRequest),
    ].join('\n');
    const keyScope = `${creds.secretAccessKey}\0${scope}`;
    if (this.#keyScope !== keyScope || this.#key === undefined) {
      const hmac = (k: string | Buffer, d: string) => createHmac('sha256', k).update(d).digest();
      const kDate = hmac(`AWS4${creds.secretAccessKey}`, day);
      this.#key = hmac(hmac(hmac(kDate, input.region), input.service), 'aws4_request');
      this.#keyScope = keyScope;
    }
    const signature = createHmac('sha256', this.#key).update(stringToSign).digest('hex');
    return {
      authorization:
        `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, ` +
        `SignedHeaders=${signedHeaders}, Signature=${signature}`,
      canonicalRequest,
      stringToSign,
    };
  }
}
