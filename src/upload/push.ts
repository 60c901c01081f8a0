/**
 * Push: the closure of some store paths into the cache, verified, compressed, signed and
 * published in closure order. One pipeline serves the one-shot `--upload-path` and the
 * service's batches.
 *
 * Per path: the NAR, packed from disk in a worker thread (or streamed from the nix-daemon
 * through a compressor), checked against the registered narHash and narSize, compressed
 * and hashed (FileHash/FileSize), into storage; then the narinfo, written only after its
 * NAR is stored and every reference's narinfo exists (PublishOrder); then the local index.
 * NARs run `uploadThreads` at a time, biggest first; narinfos follow as they become valid.
 * A path that fails dooms only the paths that depend on it.
 */
import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream';
import { LoftError, describeError, isLoftError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { mapLimit, Semaphore, sleep } from '../util/limit.js';
import { NarParser } from '../nix/nar-parse.js';
import { NarListingBuilder } from '../nix/nar-listing.js';
import { formatNarInfo, type NarInfo } from '../nix/narinfo.js';
import type { SecretKey } from '../nix/signing.js';
import {
  CompressionInputMismatchError,
  type Compression,
  type CompressionDigests,
} from '../compress/index.js';
import { PackSourceError, PackStream, type NarPacker } from '../pack/index.js';
import { parseStorePath, storePathHashPart } from '../nix/store-path.js';
import { Hash } from '../nix/hash.js';
import { NarMismatchError } from '../store/errors.js';
import type { LocalStore } from '../store/local-store.js';
import type { PathInfo } from '../store/path-info.js';
// keys.js and port.js, not index.js: a push to a local directory need not load the AWS SDK.
import { CONTENT_TYPES, listingKey, narInfoKey, narKey } from '../storage/keys.js';
import type { BlobStore } from '../storage/port.js';
import { ensureCacheInfo } from './cache-info.js';
import { PushProgress, type PushEvent } from './events.js';
import { buildNarInfo, type StoredNar } from './narinfo-build.js';
import {
  planPush,
  summarizePlan,
  type CachedPath,
  type PlanSummary,
  type PushPlan,
} from './plan.js';
import { PublishOrder } from './publish-order.js';
import { remoteNarInfos } from './remote-lookup.js';
import { PushLease, type LeaseOptions } from './lease.js';

/** The local index as the pipeline uses it (LocalIndex fits): present paths of this cache. */
export interface PresenceIndex {
  getPresentMany(hashParts: Iterable<string>): Map<string, { narinfoTime: number }>;
  /** Called only after the narinfo is in the cache (or was found there). */
  recordPresent(
    entries: readonly { hashPart: string; storePath?: string; narinfoTime: number }[],
  ): void;
  /** Paths found gone from the cache. */
  forgetPresent(hashParts: Iterable<string>): number;
}

export interface PushContext {
  store: Pick<LocalStore, 'storeDir' | 'closure' | 'narStream' | 'holdTempRoots'>;
  blobs: BlobStore;
  index: PresenceIndex | undefined;
  compression: Compression;
  compressionLevel: number | undefined;
  signingKey: SecretKey | undefined;
  logger: Logger;
  /**
   * Packs NARs from disk in worker threads (zstd and none), so the NAR never crosses the
   * main thread; without it, or when a path cannot be read from disk, NARs come from the
   * nix-daemon and are compressed in the compressor's streams.
   */
  packer?: NarPacker;
  /** Where the store's files are on disk, when not at the store dir (chroot stores). */
  realStoreDir?: string;
}

/** One NAR on its way to storage: the compressed bytes, and what was measured of them. */
interface NarSource {
  body: Readable;
  digests(): CompressionDigests | undefined;
  listing(): Buffer | undefined;
  /** NAR bytes read so far (for progress). */
  narBytes(): number;
}

export interface PushOptions {
  /** NARs in flight at once, across all paths. */
  uploadThreads: number;
  skipSignedByKeys: readonly string[];
  /** Ask the cache about every path instead of trusting the local index. */
  ignoreIndex?: boolean;
  /**
   * Refresh-on-use: cached paths whose narinfo is older than this many ms are refreshed
   * (server-side copy onto itself) before anything is published, so pruning keeps what
   * this push relies on. Half the prune retention; undefined when pruning is off.
   */
  refreshAfterMs?: number;
  /** The clock (tests). */
  now?: () => Date;
  /** The lease protocol's timing and test hooks (src/upload/lease.ts). */
  lease?: LeaseOptions;
  /** Plan and report only; write nothing. */
  dryRun?: boolean;
  /** Also write `<hash>.ls` NAR listings. */
  writeListing?: boolean;
  /** Attempts per path for transient failures (lost daemon connection, storage giving up). */
  pathAttempts?: number;
  /** First retry delay; doubles per attempt, with full jitter. */
  retryBaseMs?: number;
  /** Stop starting new paths; those in flight finish and are published. */
  drain?: AbortSignal;
  /** Abort in-flight uploads now; nothing half-written is ever published. */
  signal?: AbortSignal;
  onEvent?: (e: PushEvent) => void;
  progress?: PushProgress;
}

export interface PushResult {
  dryRun: boolean;
  summary: PlanSummary;
  /** Cached narinfos refreshed so pruning keeps them (refresh-on-use). */
  refreshed: number;
  uploaded: { path: string; narSize: number; fileSize: number }[];
  failed: { path: string; reason: string; error: unknown }[];
  /** Planned but never started, because a drain stopped intake. */
  notStarted: string[];
  ms: number;
  /** Every requested closure is in the cache, apart from paths left to upstream. */
  complete: boolean;
}

/** NAR and compressed bytes of what a push published. */
export function uploadedBytes(r: Pick<PushResult, 'uploaded'>): { nar: number; file: number } {
  let nar = 0;
  let file = 0;
  for (const u of r.uploaded) {
    nar += u.narSize;
    file += u.fileSize;
  }
  return { nar, file };
}

const DEFAULT_PATH_ATTEMPTS = 3;
const DEFAULT_RETRY_BASE_MS = 1000;
/** Server-side copies in flight while refreshing. */
const REFRESH_CONCURRENCY = 16;

/**
 * Errors that mean the whole push cannot succeed (S3 refuses us, the bucket is missing,
 * the daemon is gone for good): stop everything rather than fail every path one by one.
 */
function isFatal(e: unknown): boolean {
  if (!(e instanceof LoftError)) return false;
  if (e.code === 'DAEMON_CONNECTION_LOST') return false; // the pool reconnects
  return e.kind === 'environment' || e.kind === 'config' || e.kind === 'internal';
}

/** Failures worth another attempt of the whole path. */
function isTransient(e: unknown): boolean {
  if (!(e instanceof LoftError)) return true; // unexpected stream errors: one more try
  return e.code === 'DAEMON_CONNECTION_LOST' || e.code === 'S3_REQUEST_FAILED';
}

/** The store's own error for bytes that differ from the registered narHash/narSize. */
function narMismatch(info: PathInfo, e: CompressionInputMismatchError): NarMismatchError {
  return new NarMismatchError(info.path, {
    expectedHash: info.narHash,
    expectedSize: info.narSize,
    actualHash:
      e.actual.sha256 === undefined
        ? undefined
        : new Hash('sha256', e.actual.sha256).toNix32String(),
    actualSize: e.actual.size,
    against: 'registered',
  });
}

export async function push(
  ctx: PushContext,
  roots: readonly string[],
  opts: PushOptions,
): Promise<PushResult> {
  const t0 = performance.now();
  const emit = opts.onEvent ?? (() => {});
  const now = opts.now ?? (() => new Date());
  const closure = await ctx.store.closure(roots);
  emit({ type: 'closure', roots: roots.length, paths: closure.length });

  let plan = await makePlan(ctx, closure, opts, now, opts.ignoreIndex ?? false);
  const result: PushResult = {
    dryRun: opts.dryRun ?? false,
    summary: summarizePlan(plan),
    refreshed: 0,
    uploaded: [],
    failed: [],
    notStarted: [],
    ms: 0,
    complete: false,
  };
  emit({ type: 'plan', summary: result.summary });
  if (opts.dryRun) {
    result.complete = plan.toUpload.length === 0;
    result.ms = performance.now() - t0;
    return result;
  }
  rememberRemote(ctx, plan, now);

  // Lease protocol (lease.ts): lease the closure, wait out prunes that touch it, trust
  // cached paths only as the bucket answers after that, publish only while the lease holds.
  const layout = { storeDir: ctx.store.storeDir, extension: ctx.compression.extension };
  await using lease = await PushLease.acquire(ctx.blobs, ctx.logger, closure, layout, opts.lease);
  const rechecked = await lease.recheck(
    plan,
    ctx.store.storeDir,
    (hps) => ctx.index?.forgetPresent(hps),
    () => makePlan(ctx, closure, opts, now, true),
  );
  if (rechecked !== plan) {
    plan = rechecked;
    result.summary = summarizePlan(plan);
    emit({ type: 'plan', summary: result.summary });
    rememberRemote(ctx, plan, now);
  }
  ctx = { ...ctx, blobs: lease.guard(ctx.blobs) };

  // Before anything is published: a narinfo we write must not lean on a path pruning may
  // take, so paths we rely on that are past half the retention are made young again.
  let gone = await refresh(ctx, plan.toRefresh, now);
  if (gone.length > 0) {
    // Pruned between our look and the refresh: ask the bucket again about everything.
    emit({ type: 'replanned', gone: gone.length });
    ctx.index?.forgetPresent(gone.map((p) => storePathHashPart(p, ctx.store.storeDir)));
    plan = await makePlan(ctx, closure, opts, now, true);
    result.summary = summarizePlan(plan);
    emit({ type: 'plan', summary: result.summary });
    rememberRemote(ctx, plan, now);
    gone = await refresh(ctx, plan.toRefresh, now);
    if (gone.length > 0) {
      throw new LoftError(
        'CACHE_CHANGING',
        'environment',
        `${gone.length} cached paths vanished from ${ctx.blobs.description} twice while this push read it (${gone[0]}...)`,
        { hint: 'another machine is pruning this cache right now; run the push again' },
      );
    }
  }
  result.refreshed = plan.toRefresh.length;
  if (result.refreshed > 0) emit({ type: 'refreshed', paths: result.refreshed });

  if ((await ensureCacheInfo(ctx.blobs, ctx.store.storeDir)) === 'written') {
    emit({ type: 'cache-info-written', description: ctx.blobs.description });
  }
  if (plan.toUpload.length > 0) {
    // Keep the paths alive while we read them: a GC between plan and upload would fail them.
    const lease = await ctx.store.holdTempRoots(plan.toUpload.map((i) => i.path));
    try {
      const satisfied = new Set([
        ...plan.alreadyCached.map((c) => c.info.path),
        ...plan.upstream.map((i) => i.path),
      ]);
      await new PushRun(ctx, opts, plan.toUpload, satisfied, result, emit).execute();
    } finally {
      await lease.release();
    }
  }
  result.complete =
    result.failed.length === 0 &&
    result.notStarted.length === 0 &&
    result.uploaded.length === plan.toUpload.length;
  result.ms = performance.now() - t0;
  return result;
}

function makePlan(
  ctx: PushContext,
  closure: readonly PathInfo[],
  opts: PushOptions,
  now: () => Date,
  ignoreIndex: boolean,
): Promise<PushPlan> {
  return planPush(
    closure,
    {
      knownPresent: (hps) => {
        const found = new Map<string, Date>();
        for (const [hp, e] of ctx.index?.getPresentMany(hps) ?? []) {
          found.set(hp, new Date(e.narinfoTime));
        }
        return found;
      },
      remotePresent: (hps) => remoteNarInfos(ctx.blobs, hps),
    },
    {
      storeDir: ctx.store.storeDir,
      skipSignedByKeys: opts.skipSignedByKeys,
      ignoreIndex,
      refreshBefore:
        opts.refreshAfterMs === undefined
          ? undefined
          : new Date(now().getTime() - opts.refreshAfterMs),
    },
  );
}

/** What the bucket told us is worth remembering: the next push will not ask again. */
function rememberRemote(ctx: PushContext, plan: PushPlan, now: () => Date): void {
  const learned = plan.alreadyCached.filter((c) => c.source === 'remote');
  if (learned.length === 0) return;
  ctx.index?.recordPresent(
    learned.map((c) => ({
      hashPart: storePathHashPart(c.info.path, ctx.store.storeDir),
      storePath: c.info.path,
      narinfoTime: (c.lastModified ?? now()).getTime(),
    })),
  );
}

/** Renew narinfos (server-side copy onto themselves); returns the paths found gone. */
async function refresh(
  ctx: PushContext,
  paths: readonly CachedPath[],
  now: () => Date,
): Promise<string[]> {
  const gone: string[] = [];
  const done: CachedPath[] = [];
  await mapLimit(paths, REFRESH_CONCURRENCY, async (c) => {
    const key = narInfoKey(storePathHashPart(c.info.path, ctx.store.storeDir));
    try {
      await ctx.blobs.copy(key, key, { contentType: CONTENT_TYPES.narInfo });
      done.push(c);
    } catch (e) {
      if (!isLoftError(e, 'STORAGE_NO_SUCH_KEY')) throw e;
      gone.push(c.info.path);
    }
  });
  const at = now().getTime();
  ctx.index?.recordPresent(
    done.map((c) => ({
      hashPart: storePathHashPart(c.info.path, ctx.store.storeDir),
      storePath: c.info.path,
      narinfoTime: at,
    })),
  );
  return gone;
}

class PushRun {
  private readonly order: PublishOrder;
  private readonly pending: PathInfo[];
  private readonly narInfos = new Map<string, { narInfo: NarInfo; listing?: Buffer }>();
  private readonly publishing = new Set<Promise<void>>();
  private readonly publishSlots: Semaphore;
  private readonly abort = new AbortController();
  private readonly inFlight = new Map<string, AbortController>();
  private readonly progress: PushProgress;
  private fatal: unknown;

  constructor(
    private readonly ctx: PushContext,
    private readonly opts: PushOptions,
    toUpload: readonly PathInfo[],
    satisfied: ReadonlySet<string>,
    private readonly result: PushResult,
    private readonly emit: (e: PushEvent) => void,
  ) {
    this.order = new PublishOrder(toUpload, (p) => satisfied.has(p));
    // Biggest first: the longest uploads start early instead of trailing at the end.
    this.pending = [...toUpload].sort((a, b) => b.narSize - a.narSize);
    this.publishSlots = new Semaphore(Math.max(4, opts.uploadThreads * 2));
    this.progress = opts.progress ?? new PushProgress();
    this.progress.pathsTotal += toUpload.length;
    this.progress.narBytesTotal += toUpload.reduce((n, i) => n + i.narSize, 0);
    // One listener per path in flight (uploadThreads of them) is expected, not a leak.
    setMaxListeners(0, this.abort.signal);
    if (opts.signal) {
      const outer = opts.signal;
      if (outer.aborted) this.abort.abort(outer.reason);
      else outer.addEventListener('abort', () => this.abort.abort(outer.reason), { once: true });
    }
  }

  private get stopped(): boolean {
    return this.abort.signal.aborted || (this.opts.drain?.aborted ?? false);
  }

  async execute(): Promise<void> {
    const threads = Math.max(1, this.opts.uploadThreads);
    await Promise.all(Array.from({ length: threads }, () => this.worker()));
    while (this.publishing.size > 0) await Promise.allSettled([...this.publishing]);
    for (const info of this.pending) {
      if (!this.order.isFailed(info.path)) this.result.notStarted.push(info.path);
    }
    if (this.fatal !== undefined) throw this.fatal;
    if (this.opts.signal?.aborted) throw this.opts.signal.reason;
  }

  private async worker(): Promise<void> {
    while (!this.stopped) {
      const info = this.pending.shift();
      if (!info) return;
      if (this.order.isFailed(info.path)) continue; // a dependency failed meanwhile
      await this.uploadPath(info);
    }
  }

  private async uploadPath(info: PathInfo): Promise<void> {
    const attempts = this.opts.pathAttempts ?? DEFAULT_PATH_ATTEMPTS;
    for (let attempt = 1; ; attempt++) {
      const ac = new AbortController();
      const onAbort = () => ac.abort(this.abort.signal.reason);
      this.abort.signal.addEventListener('abort', onAbort, { once: true });
      this.inFlight.set(info.path, ac);
      this.progress.inFlight++;
      try {
        this.emit({ type: 'path-started', path: info.path, narSize: info.narSize, attempt });
        const t = performance.now();
        const stored = await this.storeNar(info, ac.signal);
        this.emit({
          type: 'path-stored',
          path: info.path,
          narSize: info.narSize,
          fileSize: stored.nar.fileSize,
          ms: performance.now() - t,
        });
        this.narInfos.set(info.path, {
          narInfo: buildNarInfo(info, stored.nar, this.ctx.store.storeDir, this.ctx.signingKey),
          listing: stored.listing,
        });
        for (const p of this.order.narStored(info.path)) this.publish(p);
        return;
      } catch (e) {
        if (ac.signal.aborted) {
          // Aborted from outside (signal, fatal error elsewhere) or doomed by a dependency.
          if (this.order.isFailed(info.path) || this.abort.signal.aborted) return;
        }
        if (isFatal(e)) {
          this.setFatal(e);
          return;
        }
        if (isTransient(e) && attempt < attempts && !this.stopped) {
          const base = this.opts.retryBaseMs ?? DEFAULT_RETRY_BASE_MS;
          const delayMs = Math.round(Math.random() * base * 2 ** (attempt - 1));
          this.emit({ type: 'path-retrying', path: info.path, attempt, delayMs, error: e });
          try {
            await sleep(delayMs, this.abort.signal);
          } catch {
            return;
          }
          continue;
        }
        this.failPath(info.path, describeError(e), e);
        return;
      } finally {
        this.abort.signal.removeEventListener('abort', onAbort);
        this.inFlight.delete(info.path);
        this.progress.inFlight--;
      }
    }
  }

  /** Stream one NAR into storage; resolves only if every byte matched the store's record. */
  private async storeNar(
    info: PathInfo,
    signal: AbortSignal,
  ): Promise<{ nar: StoredNar; listing?: Buffer }> {
    const { compression, blobs } = this.ctx;
    const key = narKey(info.narHash, compression.extension);
    let source = this.packedSource(info) ?? this.daemonSource(info);
    let packed = source.body instanceof PackStream;
    let stored = 0;
    let res;
    for (;;) {
      try {
        res = await blobs.upload(key, source.body, {
          contentType: CONTENT_TYPES.nar,
          sizeHint: info.narSize,
          signal,
          onProgress: (bytes) => {
            this.progress.fileBytesWritten += bytes - stored;
            stored = bytes;
          },
        });
        break;
      } catch (e) {
        // A failed attempt's bytes are not progress.
        this.progress.narBytesRead -= source.narBytes();
        this.progress.fileBytesWritten -= stored;
        stored = 0;
        if (
          packed &&
          (e instanceof PackSourceError || e instanceof CompressionInputMismatchError)
        ) {
          // Not readable from disk here (permissions, another root), or the files on disk are
          // not the daemon's (a chroot store without real_store_dir): the daemon is the
          // authority on the path's bytes, so it decides whether the path is corrupt.
          this.ctx.logger.debug(`reading ${info.path} through the nix-daemon: ${e.message}`);
          source = this.daemonSource(info);
          packed = false;
          continue;
        }
        throw e instanceof CompressionInputMismatchError ? narMismatch(info, e) : e;
      }
    }
    const digests = source.digests();
    if (digests === undefined || res.size !== digests.outputSize) {
      throw new LoftError(
        'UPLOAD_SIZE_MISMATCH',
        'internal',
        `storage stored ${res.size} bytes of ${key} but the compressor produced ${digests?.outputSize}`,
      );
    }
    this.progress.fileBytesWritten += res.size - stored;
    return {
      nar: {
        url: key,
        compression: compression.narinfoName,
        fileHash: new Hash('sha256', digests.outputSha256).toNix32String(),
        fileSize: digests.outputSize,
      },
      listing: source.listing(),
    };
  }

  /**
   * The NAR packed from disk in a worker thread: encoded, checked against the registered
   * narHash/narSize and compressed there. Undefined when there is no packer or the method
   * needs the stream path (xz runs a program).
   */
  private packedSource(info: PathInfo): NarSource | undefined {
    const { packer, compression, compressionLevel, realStoreDir, store } = this.ctx;
    if (packer === undefined || (compression.name !== 'zstd' && compression.name !== 'none')) {
      return undefined;
    }
    const onDisk =
      realStoreDir === undefined
        ? info.path
        : `${realStoreDir}/${parseStorePath(info.path, store.storeDir).basename}`;
    const body = packer.pack({
      path: onDisk,
      compression:
        compression.name === 'zstd'
          ? { name: 'zstd', level: compression.resolveLevel(compressionLevel)! }
          : { name: 'none' },
      narHash: info.narHash,
      narSize: info.narSize,
      listing: this.opts.writeListing,
    });
    // The NAR stays in the worker; its size is known once it is done.
    let counted = 0;
    body.once('end', () => {
      counted = info.narSize;
      this.progress.narBytesRead += counted;
    });
    return {
      body,
      digests: () => body.digests(),
      listing: () => body.listing(),
      narBytes: () => counted,
    };
  }

  /**
   * The NAR from the nix-daemon, compressed by the compressor's stream. The compressor
   * hashes what it reads (against the registered narHash) and what it writes (the
   * FileHash); zstd does both in its worker thread. It errors instead of ending on a
   * mismatch, so the upload never completes with other bytes. The store checks sizes.
   */
  private daemonSource(info: PathInfo): NarSource {
    const { compression, compressionLevel, store } = this.ctx;
    const nar: Readable = store.narStream(info.path, {
      expect: { narHash: info.narHash, narSize: info.narSize },
      hashedByCaller: true,
    });
    const compressor = compression.createCompressor({
      level: compressionLevel,
      digests: true,
      expectInput: { sha256: Hash.parse(info.narHash).digest, size: info.narSize },
    });
    let read = 0;
    nar.on('data', (c: Buffer) => {
      read += c.length;
      this.progress.narBytesRead += c.length;
    });
    let listing: NarListingBuilder | undefined;
    let parser: NarParser | undefined;
    if (this.opts.writeListing) {
      listing = new NarListingBuilder();
      parser = new NarParser({ visitor: listing });
      const p = parser;
      nar.on('data', (c: Buffer) => {
        try {
          p.push(c);
        } catch (e) {
          nar.destroy(e as Error);
        }
      });
    }
    // pipeline() destroys every stage with the first error, so a NAR that fails a check
    // errors the compressor, and the upload is aborted.
    const body = pipeline(nar, compressor, () => {});
    return {
      body,
      digests: () => compressor.digests(),
      listing: () => {
        parser?.end();
        return listing?.toBuffer();
      },
      narBytes: () => read,
    };
  }

  private publish(path: string): void {
    const p = this.publishSlots
      .run(() => this.writeNarInfo(path))
      .then(
        (ready) => {
          for (const dep of ready) this.publish(dep);
        },
        (e: unknown) => {
          if (isFatal(e)) this.setFatal(e);
          else this.failPath(path, `writing its narinfo failed: ${describeError(e)}`, e);
        },
      )
      .finally(() => this.publishing.delete(p));
    this.publishing.add(p);
  }

  /** Write one narinfo (after its listing); returns the dependents now ready. */
  private async writeNarInfo(path: string): Promise<string[]> {
    const entry = this.narInfos.get(path)!;
    const hashPart = storePathHashPart(path, this.ctx.store.storeDir);
    if (entry.listing) {
      await this.ctx.blobs.put(listingKey(hashPart), entry.listing, {
        contentType: CONTENT_TYPES.listing,
      });
    }
    await this.ctx.blobs.put(narInfoKey(hashPart), formatNarInfo(entry.narInfo), {
      contentType: CONTENT_TYPES.narInfo,
    });
    this.narInfos.delete(path);
    // Counted as uploaded only now: a NAR whose narinfo is never published (a dependency
    // failed meanwhile) is in the cache for no client.
    const { narSize, fileSize = 0 } = entry.narInfo;
    this.result.uploaded.push({ path, narSize, fileSize });
    const at = (this.opts.now?.() ?? new Date()).getTime();
    this.ctx.index?.recordPresent([{ hashPart, storePath: path, narinfoTime: at }]);
    this.progress.pathsPublished++;
    this.emit({ type: 'path-published', path });
    return this.order.published(path);
  }

  private failPath(path: string, reason: string, error: unknown): void {
    const doomed = this.order.failed(path, reason);
    this.result.failed.push({ path, reason, error });
    this.progress.pathsFailed++;
    this.emit({ type: 'path-failed', path, reason, error });
    for (const d of doomed) {
      this.inFlight.get(d)?.abort(new Error(`dependency ${path} failed`));
      const why = this.order.failureReason(d)!;
      this.result.failed.push({ path: d, reason: why, error: undefined });
      this.progress.pathsFailed++;
      this.emit({ type: 'path-failed', path: d, reason: why, error: undefined });
    }
  }

  private setFatal(e: unknown): void {
    if (this.fatal === undefined) this.fatal = e;
    this.abort.abort(e);
  }
}
