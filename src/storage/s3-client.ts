/**
 * The configured AWS SDK client: the settings every S3-compatible server needs, our own
 * sockets and timeouts, and two middlewares (extra headers after signing, Content-MD5 on
 * batch deletes). Retries are ours (`retry.ts`), so the SDK makes one attempt per call.
 */
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Logger } from '../util/log.js';
import { checkHeaderName, checkHeaderValue } from '../util/http-header.js';
import { StorageOptionsError } from './errors.js';

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface S3ClientSettings {
  endpoint: string | undefined;
  region: string;
  forcePathStyle: boolean;
  credentials: S3Credentials | undefined;
  profile: string | undefined;
  extraHeaders: ReadonlyArray<readonly [string, string]>;
  maxSockets: number;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  logger: Logger;
}

/**
 * The store's own guard on extra headers, for callers that did not come through `src/config`
 * (which checks the same rules at start-up and lists every problem). A CR, LF or NUL in a
 * value would split the request. Messages name the header, never its value.
 */
export function checkExtraHeaders(
  headers: Record<string, string> | undefined,
): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const seen = new Set<string>();
  for (const [name, value] of Object.entries(headers ?? {})) {
    const problem =
      checkHeaderName(name) ??
      (typeof value === 'string' ? checkHeaderValue(value) : 'the value is not a string');
    if (problem !== undefined) {
      throw new StorageOptionsError(
        `extra header ${JSON.stringify(name)}: ${problem}`,
        'extra headers are for proxies in front of S3 (e.g. CF-Access-Client-Id) and must be one line',
      );
    }
    const lower = name.toLowerCase();
    if (seen.has(lower)) {
      throw new StorageOptionsError(`extra header "${name}" is given twice (names ignore case)`);
    }
    seen.add(lower);
    out.push([name, value]);
  }
  return out;
}

// Minimal shapes of the SDK's middleware arguments, so we need not import @smithy/types.
interface MwArgs {
  request: unknown;
}
type MwNext = (args: MwArgs) => Promise<unknown>;
type MwContext = { commandName?: string };
type Middleware = Parameters<S3Client['middlewareStack']['addRelativeTo']>[0];

function headersOf(request: unknown): Record<string, string> | undefined {
  const r = request as { headers?: unknown } | null;
  return r && typeof r.headers === 'object' && r.headers !== null
    ? (r.headers as Record<string, string>)
    : undefined;
}

/** Bodies at least this big go as UNSIGNED-PAYLOAD (see createS3Client). */
const UNSIGNED_PAYLOAD_MIN_BYTES = 64 * 1024;

function byteLength(body: unknown): number {
  if (typeof body === 'string') return Buffer.byteLength(body);
  if (body instanceof Uint8Array) return body.byteLength;
  return 0;
}

export function createS3Client(s: S3ClientSettings): S3Client {
  const agentOptions = { keepAlive: true, maxSockets: s.maxSockets };
  const config: S3ClientConfig = {
    region: s.region,
    endpoint: s.endpoint,
    forcePathStyle: s.forcePathStyle,
    // Checksums only where the API demands them: the default aws-chunked streaming with a
    // CRC trailer is rejected or stored corrupted by RGW, OVH, B2 and some Garage versions.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // One attempt per call: retry.ts retries with our policy and knows which bodies replay.
    maxAttempts: 1,
    // No "Expect: 100-continue": a proxy that ignores it stalls every part by seconds.
    expectContinueHeader: false,
    requestHandler: {
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new HttpsAgent(agentOptions),
      connectionTimeout: s.connectTimeoutMs,
      // Inactivity, not total time: a big part on a slow link may take long but never idles.
      socketTimeout: s.idleTimeoutMs,
      logger: {
        debug: () => {},
        info: () => {},
        warn: (...m: unknown[]) => s.logger.warn(`S3 client: ${m.map(String).join(' ')}`),
        error: (...m: unknown[]) => s.logger.error(`S3 client: ${m.map(String).join(' ')}`),
      },
    },
  };
  if (s.credentials) config.credentials = { ...s.credentials };
  else if (s.profile !== undefined) config.profile = s.profile;
  const client = new S3Client(config);

  // Some servers (older MinIO, B2) honour only Content-MD5 on DeleteObjects, which newer
  // SDKs no longer send; it is cheap on a small XML body, so always send it. Signed.
  const contentMd5 = ((next: MwNext, context: MwContext) => async (args: MwArgs) => {
    const headers = headersOf(args.request);
    const body = (args.request as { body?: unknown }).body;
    if (
      context.commandName === 'DeleteObjectsCommand' &&
      headers &&
      (typeof body === 'string' || body instanceof Uint8Array)
    ) {
      headers['content-md5'] = createHash('md5').update(body).digest('base64');
    }
    return next(args);
  }) as unknown as Middleware;
  client.middlewareStack.addRelativeTo(contentMd5, {
    relation: 'before',
    toMiddleware: 'httpSigningMiddleware',
    name: 'loftDeleteContentMd5',
  });

  // NAR bodies are not hashed again for the signature: the pipeline already hashed every
  // byte (FileHash, and NarHash, which every Nix client verifies on substitution), and
  // SigV4's payload hash would be a third sha256 pass on the main thread. S3, RGW, MinIO,
  // Garage and R2 accept UNSIGNED-PAYLOAD; headers, key and bucket stay signed. Small
  // objects (narinfos) keep a signed payload: hashing them costs nothing.
  const unsignedBodies = ((next: MwNext, context: MwContext) => async (args: MwArgs) => {
    const headers = headersOf(args.request);
    if (
      headers &&
      (context.commandName === 'UploadPartCommand' ||
        (context.commandName === 'PutObjectCommand' &&
          byteLength((args.request as { body?: unknown }).body) >= UNSIGNED_PAYLOAD_MIN_BYTES))
    ) {
      headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
    }
    return next(args);
  }) as unknown as Middleware;
  client.middlewareStack.addRelativeTo(unsignedBodies, {
    relation: 'before',
    toMiddleware: 'httpSigningMiddleware',
    name: 'loftUnsignedNarBodies',
  });

  // Extra headers go on after SigV4 signing, so they are not in SignedHeaders: an auth
  // proxy (Cloudflare Access) strips them before S3 checks the signature.
  if (s.extraHeaders.length > 0) {
    const extra = s.extraHeaders;
    const addHeaders = ((next: MwNext) => async (args: MwArgs) => {
      const headers = headersOf(args.request);
      if (headers) for (const [name, value] of extra) headers[name] = value;
      return next(args);
    }) as unknown as Middleware;
    client.middlewareStack.addRelativeTo(addHeaders, {
      relation: 'after',
      toMiddleware: 'httpSigningMiddleware',
      name: 'loftExtraHeadersAfterSigning',
    });
  }
  return client;
}
