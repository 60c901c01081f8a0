/**
 * `--verify` as I/O: list the whole bucket, read nix-cache-info and every narinfo, audit
 * them (audit.ts), ask again about anything found missing (the listing is not a snapshot:
 * an upload running meanwhile may have written it after its page was listed), and with
 * `deep` read every NAR back, `concurrency` at a time, hashing it as it streams.
 */
import { createHash } from 'node:crypto';
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describeError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { mapLimit } from '../util/limit.js';
import type { PublicKey } from '../nix/signing.js';
import { CACHE_INFO_KEY, isNarInfoKey } from '../storage/keys.js';
import type { BlobStore } from '../storage/port.js';
import { canDecompress, createDecompressor } from '../compress/decompress.js';
import { audit, deepFindings, type SoundNarInfo } from './audit.js';
import type { Finding } from './findings.js';
import { VerifyNoStreamError } from './errors.js';

/** Narinfos read at once: small objects, latency-bound. */
const GET_CONCURRENCY = 32;
/** NARs read back at once by default: each holds a stream and a decompressor process. */
export const DEFAULT_DEEP_CONCURRENCY = 4;

export interface VerifyContext {
  blobs: BlobStore;
  logger: Logger;
  trustedKeys: readonly PublicKey[];
  storeDir: string;
  /**
   * The key in skip_signed_by_keys that signed this path in the local store, if any: a
   * reference without a narinfo is then left to that upstream cache, not missing.
   * Without it (no daemon), every reference without a narinfo is damage.
   */
  upstreamSigner?: (storePath: string) => Promise<string | undefined>;
}

export interface VerifyProgress {
  phase: 'listing' | 'narinfos' | 'nars';
  done: number;
  total: number;
  bytes: number;
}

export interface VerifyOptions {
  deep: boolean;
  deepConcurrency?: number;
  signal?: AbortSignal;
  onProgress?: (p: VerifyProgress) => void;
}

export interface VerifyReport {
  narInfos: number;
  nars: number;
  objects: number;
  /** NARs read back (deep only). */
  narsRead: number;
  narBytesRead: number;
  findings: Finding[];
  ms: number;
}

export async function verifyCache(ctx: VerifyContext, opts: VerifyOptions): Promise<VerifyReport> {
  const t0 = performance.now();
  const progress = opts.onProgress ?? (() => {});
  const objects: { key: string; size: number }[] = [];
  for await (const o of ctx.blobs.list('', { recursive: true })) {
    objects.push({ key: o.key, size: o.size });
    if (objects.length % 1000 === 0)
      progress({ phase: 'listing', done: objects.length, total: 0, bytes: 0 });
    opts.signal?.throwIfAborted();
  }
  const narInfoKeys = objects.map((o) => o.key).filter(isNarInfoKey);
  const texts = new Map<string, string>();
  let read = 0;
  const cacheInfo = await ctx.blobs.get(CACHE_INFO_KEY, { signal: opts.signal });
  await mapLimit(narInfoKeys, GET_CONCURRENCY, async (key) => {
    opts.signal?.throwIfAborted();
    const body = await ctx.blobs.get(key, { signal: opts.signal });
    if (body !== undefined) texts.set(key, body.toString('utf8'));
    progress({ phase: 'narinfos', done: ++read, total: narInfoKeys.length, bytes: 0 });
  });
  const result = audit({
    objects,
    cacheInfo: cacheInfo?.toString('utf8'),
    narInfos: texts,
    trustedKeys: ctx.trustedKeys,
    storeDir: ctx.storeDir,
  });
  const findings = await leftUpstream(ctx, await dropStillThere(ctx.blobs, result.findings));

  let narsRead = 0;
  let narBytesRead = 0;
  if (opts.deep) {
    const read = ctx.blobs.getStream?.bind(ctx.blobs);
    if (read === undefined) throw new VerifyNoStreamError(ctx.blobs.description);
    let done = 0;
    await mapLimit(result.sound, opts.deepConcurrency ?? DEFAULT_DEEP_CONCURRENCY, async (n) => {
      opts.signal?.throwIfAborted();
      const r = await checkNar(read, n, opts.signal);
      findings.push(...r.findings);
      if (r.read) narsRead++;
      narBytesRead += r.bytes;
      progress({ phase: 'nars', done: ++done, total: result.sound.length, bytes: narBytesRead });
    });
  }
  return {
    narInfos: result.narInfos,
    nars: result.nars,
    objects: objects.length,
    narsRead,
    narBytesRead,
    findings,
    ms: performance.now() - t0,
  };
}

/** Missing objects found present when asked directly were written after the listing. */
async function dropStillThere(blobs: BlobStore, findings: Finding[]): Promise<Finding[]> {
  const keep = await mapLimit(
    findings,
    GET_CONCURRENCY,
    async (f) => f.missingKey === undefined || (await blobs.head(f.missingKey)) === undefined,
  );
  return findings.filter((_, i) => keep[i]);
}

/** Missing references the local store says an upstream cache serves become notices. */
async function leftUpstream(ctx: VerifyContext, findings: Finding[]): Promise<Finding[]> {
  const signer = ctx.upstreamSigner;
  if (signer === undefined) return findings;
  return mapLimit(findings, GET_CONCURRENCY, async (f) => {
    if (f.kind !== 'missing-reference' || f.reference === undefined) return f;
    const key = await signer(f.reference);
    return key === undefined
      ? f
      : {
          ...f,
          kind: 'upstream-reference' as const,
          detail: `reference ${f.reference} is signed by ${key} in the local store: left to that cache`,
        };
  });
}

type Reader = NonNullable<BlobStore['getStream']>;

/** Read one NAR back: FileHash over the stored bytes, NarHash/NarSize over what they decompress to. */
async function checkNar(
  read: Reader,
  n: SoundNarInfo,
  signal: AbortSignal | undefined,
): Promise<{ findings: Finding[]; read: boolean; bytes: number }> {
  const about = { key: n.key, hashPart: n.hashPart, storePath: n.info.storePath };
  if (!canDecompress(n.info.compression)) {
    return {
      findings: [
        {
          kind: 'unreadable-nar',
          ...about,
          detail: `NAR ${n.narKey}: --deep cannot read compression ${JSON.stringify(n.info.compression)}`,
        },
      ],
      read: false,
      bytes: 0,
    };
  }
  const source = await read(n.narKey, { signal });
  if (source === undefined) return { findings: [], read: false, bytes: 0 }; // deleted since the listing
  const file = createHash('sha256');
  let fileSize = 0;
  let fileDone = false;
  const nar = createHash('sha256');
  let narSize = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      file.update(chunk);
      fileSize += chunk.length;
      cb(null, chunk);
    },
    flush(cb) {
      fileDone = true;
      cb();
    },
  });
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      nar.update(chunk);
      narSize += chunk.length;
      cb();
    },
  });
  try {
    await pipeline(source, tap, createDecompressor(n.info.compression), sink, { signal });
  } catch (e) {
    signal?.throwIfAborted();
    const out: Finding[] = [];
    // A truncated or altered file is usually fully read before the decompressor gives up.
    if (fileDone) {
      out.push(
        ...deepFindings(n, {
          fileSha256: file.digest(),
          fileSize,
          narSha256: Buffer.alloc(32),
          narSize: -1,
        }).filter((f) => f.kind === 'file-hash'),
      );
    }
    out.push({
      kind: 'unreadable-nar',
      ...about,
      detail: `NAR ${n.narKey} does not decompress as ${n.info.compression}: ${describeError(e).split('\n')[0]}`,
    });
    return { findings: out, read: true, bytes: fileSize };
  }
  return {
    findings: deepFindings(n, {
      fileSha256: file.digest(),
      fileSize,
      narSha256: nar.digest(),
      narSize,
    }),
    read: true,
    bytes: fileSize,
  };
}
