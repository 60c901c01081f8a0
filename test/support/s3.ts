/**
 * S3 helpers for tests and benches against the harness's real Ceph RGW: an SDK client for
 * setup and for checking results independently of our store, unique buckets, deterministic
 * byte streams, and two small proxies of our own in front of RGW: one that demands extra
 * headers and strips them (like Cloudflare Access), one that injects faults.
 */
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import type { S3StoreOptions } from '../../src/storage/s3-store.js';

export interface S3TestEnv {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export function s3TestEnv(env: NodeJS.ProcessEnv = process.env): S3TestEnv {
  const need = (name: string) => {
    const v = env[name];
    if (!v) {
      throw new Error(
        `${name} is not set: run integration tests through the harness ` +
          '(node dist/test/harness/run.js <filter>), which starts Ceph RGW',
      );
    }
    return v;
  };
  return {
    endpoint: need('LOFT_TEST_S3_ENDPOINT'),
    region: need('LOFT_TEST_S3_REGION'),
    accessKeyId: need('LOFT_TEST_S3_ACCESS_KEY'),
    secretAccessKey: need('LOFT_TEST_S3_SECRET_KEY'),
  };
}

/** A plain SDK client straight to RGW, for setup and independent checks. */
export function testS3Client(env: S3TestEnv = s3TestEnv(), endpoint = env.endpoint): S3Client {
  return new S3Client({
    endpoint,
    region: env.region,
    forcePathStyle: true,
    credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** Options for our store pointed at RGW (or at a proxy in front of it). */
export function storeOptions(
  bucket: string,
  overrides: Partial<S3StoreOptions> = {},
  env: S3TestEnv = s3TestEnv(),
): S3StoreOptions {
  return {
    bucket,
    endpoint: env.endpoint,
    region: env.region,
    credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey },
    // Fast retries in tests; the policy itself is unit-tested.
    retryBaseDelayMs: 10,
    retryMaxDelayMs: 100,
    ...overrides,
  };
}

/** Create a bucket with a unique name (each test file makes its own). */
export async function createBucket(client: S3Client, tag: string): Promise<string> {
  const name = `loft-${tag}-${randomBytes(4).toString('hex')}`.toLowerCase().slice(0, 63);
  await client.send(new CreateBucketCommand({ Bucket: name }));
  return name;
}

export async function listKeysRaw(client: S3Client, bucket: string, prefix?: string) {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const r = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const o of r.Contents ?? []) keys.push(o.Key!);
    token = r.NextContinuationToken;
  } while (token);
  return keys;
}

export async function listMultipartUploadsRaw(client: S3Client, bucket: string) {
  const r = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return (r.Uploads ?? []).map((u) => ({ key: u.Key!, uploadId: u.UploadId! }));
}

/** SHA-256 and size of an object, streamed (big objects never sit in test memory). */
export async function hashObject(
  client: S3Client,
  bucket: string,
  key: string,
): Promise<{ sha256: string; size: number }> {
  const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of r.Body as Readable) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), size };
}

/**
 * Deterministic pseudo-random bytes (AES-128-CTR keystream of a seed), streamed in chunks
 * of varying size so part boundaries fall mid-chunk. Same seed and size, same bytes.
 */
export function patternStream(size: number, seed: string, maxChunk = 100_003): Readable {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  let left = size;
  let i = 0;
  return new Readable({
    read() {
      if (left === 0) return void this.push(null);
      // Chunk sizes cycle through odd values so they never line up with MiB boundaries.
      const n = Math.min(left, 1 + ((i++ * 7919) % maxChunk));
      left -= n;
      this.push(cipher.update(Buffer.alloc(n)));
    },
  });
}

export async function sha256OfStream(s: AsyncIterable<Uint8Array>): Promise<string> {
  const h = createHash('sha256');
  for await (const c of s) h.update(c);
  return h.digest('hex');
}

export function patternSha256(size: number, seed: string): Promise<string> {
  return sha256OfStream(patternStream(size, seed));
}

// ---------------------------------------------------------------------------------------
// Proxies in front of RGW

export interface ProxyRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
}

export interface Proxy {
  url: string;
  close(): Promise<void>;
}

function parseRequest(req: http.IncomingMessage): ProxyRequest {
  const u = new URL(req.url ?? '/', 'http://proxy');
  return {
    method: req.method ?? 'GET',
    path: u.pathname,
    query: u.searchParams,
    headers: req.headers,
  };
}

function sendError(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  status: number,
  code: string,
  extra: Record<string, string> = {},
) {
  // Read the body first so the client sees an answer, not a reset, and can reuse the socket.
  req.resume();
  req.on('end', () => {
    const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected by test proxy</Message></Error>`;
    res.writeHead(status, {
      'content-type': 'application/xml',
      'content-length': Buffer.byteLength(body),
      ...extra,
    });
    res.end(body);
  });
}

type ResponseHook = (upstream: http.IncomingMessage, res: http.ServerResponse) => void;

/** Forward a request to the target, body streamed, minus `strip` headers. */
function forward(
  target: URL,
  agent: http.Agent,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  strip: string[] = [],
  onResponse?: ResponseHook,
) {
  const headers = { ...req.headers };
  for (const h of [...strip, 'expect']) delete headers[h.toLowerCase()];
  const up = http.request(
    {
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      headers,
      agent,
    },
    (upRes) => {
      if (onResponse) return onResponse(upRes, res);
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    },
  );
  up.on('error', () => res.destroy());
  req.pipe(up);
}

async function listen(
  server: http.Server,
  agent: http.Agent,
  stalled: Set<http.ServerResponse>,
): Promise<Proxy> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const r of stalled) r.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      agent.destroy();
    },
  };
}

export interface HeaderProxyRecord {
  method: string;
  path: string;
  accepted: boolean;
  /** Header names listed in the request's SigV4 SignedHeaders. */
  signedHeaders: string[];
}

/**
 * Demands `required` headers with exact values on every request (403 otherwise), strips
 * them, and forwards to RGW, which then checks the signature without them: if they had been
 * signed, RGW would answer SignatureDoesNotMatch.
 */
export async function startHeaderProxy(
  target: string,
  required: Record<string, string>,
): Promise<Proxy & { records: HeaderProxyRecord[] }> {
  const t = new URL(target);
  const agent = new http.Agent({ keepAlive: true });
  const records: HeaderProxyRecord[] = [];
  const server = http.createServer((req, res) => {
    const r = parseRequest(req);
    const auth = String(req.headers.authorization ?? '');
    const signedHeaders = /SignedHeaders=([^,\s]+)/.exec(auth)?.[1]?.split(';') ?? [];
    const accepted = Object.entries(required).every(
      ([name, value]) => req.headers[name.toLowerCase()] === value,
    );
    records.push({ method: r.method, path: r.path, accepted, signedHeaders });
    if (!accepted) return sendError(req, res, 403, 'AccessDenied');
    forward(t, agent, req, res, Object.keys(required));
  });
  return { ...(await listen(server, agent, new Set())), records };
}

export type FaultAction =
  /** Answer with this status and S3 error code, without reaching RGW. */
  | { kind: 'status'; status: number; code: string; retryAfter?: string }
  /** Read this many bytes of the request body, then cut the connection. */
  | { kind: 'drop-request'; afterBytes: number }
  /** Let RGW carry out the request, then cut the connection instead of answering. */
  | { kind: 'drop-response' }
  /** Let RGW answer, pass on the headers and this many body bytes, then cut. */
  | { kind: 'truncate-response'; afterBytes: number }
  /** Let RGW answer, and pass the answer on this many milliseconds later. */
  | { kind: 'delay-response'; ms: number }
  /** Never answer. */
  | { kind: 'stall' };

export interface FaultRule {
  name: string;
  match(r: ProxyRequest): boolean;
  action: FaultAction;
  /** How many matching requests get the fault (then they pass). */
  times: number;
}

export interface FaultLogEntry {
  method: string;
  path: string;
  query: string;
  at: number;
  fault: string | undefined;
}

export async function startFaultProxy(
  target: string,
  rules: FaultRule[] = [],
): Promise<Proxy & { rules: FaultRule[]; log: FaultLogEntry[] }> {
  const t = new URL(target);
  const agent = new http.Agent({ keepAlive: true });
  const log: FaultLogEntry[] = [];
  const stalled = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    const r = parseRequest(req);
    const rule = rules.find((x) => x.times > 0 && x.match(r));
    if (rule) rule.times--;
    log.push({
      method: r.method,
      path: r.path,
      query: r.query.toString(),
      at: Date.now(),
      fault: rule?.name,
    });
    const a = rule?.action;
    if (!a) return forward(t, agent, req, res);
    switch (a.kind) {
      case 'status':
        return sendError(
          req,
          res,
          a.status,
          a.code,
          a.retryAfter ? { 'retry-after': a.retryAfter } : {},
        );
      case 'drop-request': {
        let seen = 0;
        const cut = () => req.socket.destroy();
        if (a.afterBytes === 0) return cut();
        req.on('data', (c: Buffer) => {
          seen += c.length;
          if (seen >= a.afterBytes) cut();
        });
        req.on('end', cut);
        return;
      }
      case 'drop-response':
        return forward(t, agent, req, res, [], (upRes) => {
          upRes.resume();
          upRes.on('end', () => req.socket.destroy());
        });
      case 'truncate-response':
        return forward(t, agent, req, res, [], (upRes, out) => {
          out.writeHead(upRes.statusCode ?? 502, upRes.headers);
          let sent = 0;
          upRes.on('data', (c: Buffer) => {
            if (sent >= a.afterBytes) return;
            const piece = c.subarray(0, a.afterBytes - sent);
            sent += piece.length;
            out.write(piece);
            if (sent >= a.afterBytes) {
              upRes.destroy();
              // Let the piece go out before the cut.
              setTimeout(() => req.socket.destroy(), 20);
            }
          });
        });
      case 'delay-response':
        return forward(t, agent, req, res, [], (upRes, out) => {
          upRes.pause();
          setTimeout(() => {
            out.writeHead(upRes.statusCode ?? 502, upRes.headers);
            upRes.pipe(out);
          }, a.ms);
        });
      case 'stall':
        req.resume();
        stalled.add(res);
        return;
    }
  });
  return { ...(await listen(server, agent, stalled)), rules, log };
}
