/**
 * The upload of a planned push: NARs `uploadThreads` at a time, in upload order, each
 * retried by the failure policy; narinfos published as they become valid (PublishOrder).
 * A path that fails dooms only the paths that depend on it.
 *
 * NARs run ahead of publication only so far: once `uploadThreads` NARs are in flight or
 * stored and waiting for a reference's narinfo, a new upload starts only for a path whose
 * references are all published (so one starts per publication, not a burst).
 * On a deep graph over a slow link, NAR bytes queued on the link would otherwise delay
 * every narinfo PUT behind them (several round trips per level instead of one), and
 * finished NARs would pile up without bound.
 *
 * Uploads also start the way TCP does: `INITIAL_WINDOW` NARs in flight at first, one more
 * allowed per NAR stored (up to `uploadThreads`). Started together, a dozen NARs share the
 * link, so the first one, which the most levels of publication wait on, would be stored
 * only when nearly all of them are; a link that carries them all at once is full within a
 * few round trips anyway.
 */
import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { LoftError, describeError } from '../util/errors.js';
import { Semaphore, sleep } from '../util/limit.js';
import {
  PUSH_PATH_ATTEMPTS,
  PUSH_PATH_BACKOFF,
  backoffMs,
  pushActionFor,
  type Backoff,
} from '../util/failure-policy.js';
import { formatNarInfo, type NarInfo } from '../nix/narinfo.js';
import { storePathHashPart } from '../nix/store-path.js';
import { Hash } from '../nix/hash.js';
import { CompressionInputMismatchError } from '../compress/index.js';
import { NarMismatchError } from '../store/errors.js';
import { pathInfoToJson, type PathInfo } from '../store/path-info.js';
// keys.js, not index.js: a push to a local directory need not load the AWS SDK.
import { CONTENT_TYPES, listingKey, narInfoKey, narKey } from '../storage/keys.js';
import { PushProgress, type PushEvent } from './events.js';
import { buildNarInfo, type StoredNar } from './narinfo-build.js';
import {
  fallbackNarSource,
  firstNarSource,
  narSourceOptions,
  type NarSourceOptions,
} from './nar-source.js';
import type { PrefetchedNars } from './prefetch.js';
import { PublishOrder } from './publish-order.js';
import type {
  ExecutionOptions,
  ObservationOptions,
  PlanningOptions,
  PresentEntry,
  PushContext,
  PushResult,
} from './push-context.js';

/** NARs in flight when a push starts (see above). */
const INITIAL_WINDOW = 2;

/** How many NARs a push starts with (its first window): the first so many in upload order. */
export function firstUploadCount(uploadThreads: number): number {
  return Math.min(INITIAL_WINDOW, Math.max(1, uploadThreads));
}

/** Published paths recorded in the local index per transaction at most, and how late. */
const INDEX_BATCH = 256;
const INDEX_FLUSH_MS = 200;

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

export class PushRun {
  private readonly order: PublishOrder;
  /** Every path to upload, in upload order; `next` is the first one not yet looked at. */
  private readonly pending: readonly PathInfo[];
  private next = 0;
  private readonly taken = new Set<string>();
  /** Paths whose references are all published, in the order they became so. */
  private readonly unblocked: PathInfo[];
  private readonly byPath: Map<string, PathInfo>;
  private readonly narInfos = new Map<string, { narInfo: NarInfo }>();
  private toIndex: PresentEntry[] = [];
  private indexTimer: NodeJS.Timeout | undefined;
  private readonly publishing = new Set<Promise<void>>();
  private readonly publishSlots: Semaphore;
  private readonly abort = new AbortController();
  private readonly inFlight = new Map<string, AbortController>();
  private readonly progress: PushProgress;
  private fatal: unknown;
  private readonly retryBackoff: Backoff;
  /** NARs in flight or stored waiting for references, before uploads hold back. */
  private readonly maxAhead: number;
  /** Paths taken by workers and not yet stored or given up (retries included). */
  private uploading = 0;
  /** Workers: uploadThreads, at least one. */
  private readonly threads: number;
  /** How many may be uploading now: grows by one per NAR stored, up to `threads`. */
  private window: number;
  /** Workers waiting for a publication (or failure, or stop) to change what may start. */
  private wakers: (() => void)[] = [];
  private readonly sourceOptions: NarSourceOptions;

  /**
   * @param toUpload the paths to upload, in upload order (`uploadOrder()`: what the most
   *   publication levels wait on first, big NARs early); the caller orders them, once, as
   *   it also picks the first ones to pack ahead of the lease.
   */
  constructor(
    private readonly ctx: PushContext,
    private readonly opts: ExecutionOptions & Pick<PlanningOptions, 'now'> & ObservationOptions,
    toUpload: readonly PathInfo[],
    satisfied: ReadonlySet<string>,
    private readonly result: PushResult,
    private readonly emit: (e: PushEvent) => void,
    /** The first NARs, packed while the lease was taken (prefetch.ts). */
    private readonly prefetched?: PrefetchedNars,
  ) {
    this.order = new PublishOrder(toUpload, (p) => satisfied.has(p));
    this.pending = toUpload;
    this.byPath = new Map(toUpload.map((i) => [i.path, i]));
    this.unblocked = this.pending.filter((i) => this.order.referencesPublished(i.path));
    this.publishSlots = new Semaphore(Math.max(4, opts.uploadThreads * 2));
    this.maxAhead = Math.max(2, opts.uploadThreads);
    this.threads = Math.max(1, opts.uploadThreads);
    this.window = firstUploadCount(this.threads);
    this.retryBackoff = {
      ...PUSH_PATH_BACKOFF,
      baseMs: opts.retryBaseMs ?? PUSH_PATH_BACKOFF.baseMs,
    };
    this.progress = opts.progress ?? new PushProgress();
    this.sourceOptions = narSourceOptions(opts.writeListing, this.progress);
    this.progress.pathsTotal += toUpload.length;
    this.progress.narBytesTotal += toUpload.reduce((n, i) => n + i.narSize, 0);
    // One listener per path in flight (uploadThreads of them) is expected, not a leak.
    setMaxListeners(0, this.abort.signal);
    if (opts.signal) {
      const outer = opts.signal;
      if (outer.aborted) this.abort.abort(outer.reason);
      else outer.addEventListener('abort', () => this.abort.abort(outer.reason), { once: true });
    }
    this.abort.signal.addEventListener('abort', () => this.changed(), { once: true });
    opts.drain?.addEventListener('abort', () => this.changed(), { once: true });
  }

  private get stopped(): boolean {
    return this.abort.signal.aborted || (this.opts.drain?.aborted ?? false);
  }

  async execute(): Promise<void> {
    try {
      await Promise.all(Array.from({ length: this.threads }, () => this.worker()));
      while (this.publishing.size > 0) await Promise.allSettled([...this.publishing]);
    } finally {
      this.flushIndex();
    }
    for (const info of this.pending) {
      if (!this.taken.has(info.path) && !this.order.isFailed(info.path)) {
        this.result.notStarted.push(info.path);
      }
    }
    if (this.fatal !== undefined) throw this.fatal;
    if (this.opts.signal?.aborted) throw this.opts.signal.reason;
  }

  private async worker(): Promise<void> {
    for (;;) {
      const info = await this.nextPath();
      if (!info) return;
      try {
        await this.uploadPath(info);
      } finally {
        this.uploading--;
        // A slot in the window is free: a worker waiting for one may start.
        this.changed();
      }
    }
  }

  /**
   * The next path to upload, in upload order; while `maxAhead` NARs are in flight or wait
   * for a reference's narinfo, the first one whose references are all published (storing
   * it lets it publish at once), or none until a publication changes that. Some such path
   * always exists unless an upload or publication is in flight, whose end wakes the wait.
   * None either while the window is full; an upload in flight then ends and wakes it.
   */
  private async nextPath(): Promise<PathInfo | undefined> {
    // Taken already, or doomed by a failed dependency meanwhile: never started (again).
    const unavailable = (i: PathInfo) => this.taken.has(i.path) || this.order.isFailed(i.path);
    for (;;) {
      for (const p of this.order.takeUnblocked()) this.unblocked.push(this.byPath.get(p)!);
      while (this.next < this.pending.length && unavailable(this.pending[this.next]!)) this.next++;
      if (this.stopped || this.next === this.pending.length) return undefined;
      let info: PathInfo | undefined;
      if (this.uploading >= this.window) {
        // The window is full: wait for an upload to end.
      } else if (this.uploading + this.order.storedWaiting < this.maxAhead) {
        info = this.pending[this.next++];
      } else {
        while (this.unblocked.length > 0 && unavailable(this.unblocked[0]!)) this.unblocked.shift();
        info = this.unblocked.shift();
      }
      if (info) {
        // Counted here, not by the caller: workers woken together must each see the others.
        this.taken.add(info.path);
        this.uploading++;
        return info;
      }
      await new Promise<void>((resolve) => this.wakers.push(resolve));
    }
  }

  /** A narinfo was written, a path failed, or the push is stopping: waiting workers look again. */
  private changed(): void {
    const wake = this.wakers;
    this.wakers = [];
    for (const w of wake) w();
  }

  private async uploadPath(info: PathInfo): Promise<void> {
    const attempts = this.opts.pathAttempts ?? PUSH_PATH_ATTEMPTS;
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
        // The listing goes with the NAR, so publication costs one PUT per level.
        if (stored.listing) await this.writeListing(info.path, stored.listing, ac.signal);
        this.emit({
          type: 'path-stored',
          path: info.path,
          narSize: info.narSize,
          fileSize: stored.nar.fileSize,
          ms: performance.now() - t,
        });
        this.narInfos.set(info.path, {
          narInfo: buildNarInfo(info, stored.nar, this.ctx.store.storeDir, this.ctx.signingKey),
        });
        this.window = Math.min(this.window + 1, this.threads);
        for (const p of this.order.narStored(info.path)) this.publish(p);
        return;
      } catch (e) {
        if (ac.signal.aborted) {
          // Aborted from outside (signal, fatal error elsewhere) or doomed by a dependency.
          if (this.order.isFailed(info.path)) return;
          if (this.abort.signal.aborted) {
            if (this.fatal === undefined) this.emit({ type: 'path-aborted', path: info.path });
            return;
          }
        }
        const action = pushActionFor(e);
        if (action === 'stop-push') {
          this.setFatal(e);
          return;
        }
        // Retried while draining too: finishing the uploads in flight includes their retries
        // (e.g. a compressor the same Ctrl-C reached as it started); only an abort stops them.
        if (action === 'retry-path' && attempt < attempts && !this.abort.signal.aborted) {
          const delayMs = backoffMs(attempt, this.retryBackoff, Math.random());
          this.emit({ type: 'path-retrying', path: info.path, attempt, delayMs, error: e });
          try {
            await sleep(delayMs, this.abort.signal);
          } catch {
            if (this.fatal === undefined) this.emit({ type: 'path-aborted', path: info.path });
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
    let source =
      this.prefetched?.take(info.path) ?? firstNarSource(this.ctx, info, this.sourceOptions);
    let stored = 0;
    let res;
    for (;;) {
      try {
        res = await blobs.upload(key, source.body, {
          contentType: CONTENT_TYPES.nar,
          cacheControl: this.ctx.cacheControl?.nar,
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
        const next = fallbackNarSource(this.ctx, info, this.sourceOptions, source, e);
        if (next !== undefined) {
          source = next;
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

  private publish(path: string): void {
    const p = this.publishSlots
      .run(() => this.writeNarInfo(path))
      .catch((e: unknown) => {
        if (pushActionFor(e) === 'stop-push') this.setFatal(e);
        else this.failPath(path, `writing its narinfo failed: ${describeError(e)}`, e);
      })
      .finally(() => this.publishing.delete(p));
    this.publishing.add(p);
  }

  /** The `.ls` listing, written before the narinfo that makes it reachable. */
  private async writeListing(path: string, listing: Buffer, signal: AbortSignal): Promise<void> {
    const hashPart = storePathHashPart(path, this.ctx.store.storeDir);
    await this.ctx.blobs.put(listingKey(hashPart), listing, {
      contentType: CONTENT_TYPES.listing,
      cacheControl: this.ctx.cacheControl?.nar,
      signal,
    });
  }

  /** Write one narinfo (its NAR and listing are stored), then start the dependents' now ready. */
  private async writeNarInfo(path: string): Promise<void> {
    const entry = this.narInfos.get(path)!;
    const hashPart = storePathHashPart(path, this.ctx.store.storeDir);
    await this.ctx.blobs.put(narInfoKey(hashPart), formatNarInfo(entry.narInfo), {
      contentType: CONTENT_TYPES.narInfo,
      cacheControl: this.ctx.cacheControl?.narInfo,
    });
    this.narInfos.delete(path);
    // Counted as uploaded only now: a NAR whose narinfo is never published (a dependency
    // failed meanwhile) is in the cache for no client.
    const { narSize, fileSize = 0 } = entry.narInfo;
    this.result.uploaded.push({ path, narSize, fileSize });
    const at = (this.opts.now?.() ?? new Date()).getTime();
    this.recordPresent({
      hashPart,
      storePath: path,
      narinfoTime: at,
      pathInfo: pathInfoToJson(this.byPath.get(path)!),
    });
    this.progress.pathsPublished++;
    this.emit({ type: 'path-published', path });
    // The dependents' narinfo PUTs go out before the uploads that changed() may start (a
    // turn of the event loop later, after every step of those PUTs' way to the socket): on
    // a deep graph they are the critical path, one round trip per level.
    for (const dep of this.order.published(path)) this.publish(dep);
    setImmediate(() => this.changed());
  }

  /**
   * Published narinfos reach the local index in batches: a transaction per path cost more
   * than the rest of a small path's work on this thread. An entry recorded late (or lost
   * to a crash) only makes a later push ask the bucket; one is never recorded early.
   */
  private recordPresent(e: PresentEntry): void {
    if (!this.ctx.index) return;
    this.toIndex.push(e);
    if (this.toIndex.length >= INDEX_BATCH) this.flushIndex();
    else this.indexTimer ??= setTimeout(() => this.flushIndex(), INDEX_FLUSH_MS);
  }

  private flushIndex(): void {
    clearTimeout(this.indexTimer);
    this.indexTimer = undefined;
    if (this.toIndex.length === 0) return;
    const batch = this.toIndex;
    this.toIndex = [];
    this.ctx.index?.recordPresent(batch);
  }

  private failPath(path: string, reason: string, error: unknown): void {
    const doomed = this.order.failed(path, reason);
    this.changed();
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
