/**
 * The deleting half of a prune run: a plan's narinfos layer by layer (referrers first, so
 * the cache stays closure-complete after every batch), then NARs and listings, each batch
 * checked with HEAD right before its delete (rule 3 in prune.ts: an object refreshed or
 * rewritten since the listing is spared, a narinfo with its closure), and stale multipart
 * uploads aborted. Every delete happens while the prune's intent is held. Counts go into the
 * run's result as they happen, so an interrupted prune reports what it did.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from '../util/log.js';
import { mapLimit } from '../util/limit.js';
import type { ObjectInfo, BlobStore, ListedObject, PendingUpload } from '../storage/port.js';
import { hashPartOfNarInfoKey } from '../storage/keys.js';
import type { HeldCoordObject } from '../storage/coordination.js';
import { add, type PlannedNarInfo, type PrunePlan, type Tally } from './plan-types.js';
import type { PruneResult } from './report.js';
import { NarInfoCache, readNarInfos, sameVersion } from './snapshot.js';

/** S3 DeleteObjects takes at most 1,000 keys; a narinfo travels with its listing. */
export const MAX_NARINFO_BATCH = 500;
export const MAX_OBJECT_BATCH = 1000;
/** Progress lines at info level at most this often (every batch at debug level). */
const PROGRESS_INTERVAL_MS = 5000;

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function clampBatch(v: number | undefined, max: number): number {
  if (v === undefined) return max;
  return Math.max(1, Math.min(max, Math.floor(v)));
}

export interface BatchDeleterOptions {
  blobs: BlobStore;
  log: Logger;
  /** The run's result: deletions, spared narinfos and objects already gone are counted in. */
  result: PruneResult;
  cache: NarInfoCache;
  /** The cache's store dir, for reading narinfos again (`nix-cache-info`). */
  storeDir: string | undefined;
  readConcurrency: number;
  checkConcurrency: number;
  narInfoBatchSize: number | undefined;
  objectBatchSize: number | undefined;
  signal: AbortSignal | undefined;
  /** Forget deleted paths in the local index. */
  forget: ((hashParts: readonly string[]) => unknown) | undefined;
}

export class BatchDeleter {
  private readonly blobs: BlobStore;
  private readonly log: Logger;
  private readonly result: PruneResult;
  private readonly cache: NarInfoCache;
  private readonly storeDir: string | undefined;
  private readonly readConcurrency: number;
  private readonly checkConcurrency: number;
  private readonly narInfoBatchSize: number | undefined;
  private readonly objectBatchSize: number | undefined;
  private readonly signal: AbortSignal | undefined;
  private readonly forgetPaths: BatchDeleterOptions['forget'];
  private lastInfo = -Infinity;

  constructor(o: BatchDeleterOptions) {
    this.blobs = o.blobs;
    this.log = o.log;
    this.result = o.result;
    this.cache = o.cache;
    this.storeDir = o.storeDir;
    this.readConcurrency = o.readConcurrency;
    this.checkConcurrency = o.checkConcurrency;
    this.narInfoBatchSize = o.narInfoBatchSize;
    this.objectBatchSize = o.objectBatchSize;
    this.signal = o.signal;
    this.forgetPaths = o.forget;
  }

  private get stopped(): boolean {
    return this.signal?.aborted === true;
  }

  /** Delete the plan's narinfos layer by layer; returns the NAR keys they pointed at. */
  async deleteNarInfos(plan: PrunePlan, intent: HeldCoordObject): Promise<Set<string>> {
    const pending = new Set(plan.narInfoLayers.flat().map((n) => n.hashPart));
    const total = pending.size;
    const deletedNarKeys = new Set<string>();
    if (total === 0) return deletedNarKeys;
    const batchSize = clampBatch(this.narInfoBatchSize, MAX_NARINFO_BATCH);
    // References of narinfos rewritten during the prune, read again, for sparing closures.
    const overrides = new Map<string, readonly string[]>();
    let done = 0;
    for (const layer of plan.narInfoLayers) {
      for (const batch of chunks(layer, batchSize)) {
        if (this.stopped) return deletedNarKeys;
        const todo = batch.filter((n) => pending.has(n.hashPart));
        if (todo.length === 0) continue;
        const { go, changed, gone } = await this.check(todo);
        if (changed.length > 0) await this.spare(changed, plan, overrides, pending);
        const doomed = go.filter((n) => pending.has(n.hashPart));
        const keys = doomed.flatMap((n) => (n.listing ? [n.key, n.listing.key] : [n.key]));
        if (keys.length > 0) {
          intent.assertHeld();
          await this.blobs.deleteMany(keys);
        }
        for (const n of doomed) {
          add(this.result.deleted.narInfos, n.size);
          if (n.listing) add(this.result.deleted.listings, n.listing.size);
          if (n.narKey) deletedNarKeys.add(n.narKey);
        }
        for (const n of gone) if (n.narKey) deletedNarKeys.add(n.narKey);
        this.result.alreadyGone += gone.length;
        for (const n of [...doomed, ...gone]) pending.delete(n.hashPart);
        await this.forget([...doomed, ...gone].map((n) => n.hashPart));
        done += doomed.length + gone.length;
        this.progress(`prune: deleted ${done}/${total} narinfos`, done === total, {
          batch: doomed.length,
          gone: gone.length,
          spared: changed.length,
        });
      }
    }
    return deletedNarKeys;
  }

  /** HEAD each planned narinfo: still the version we planned from, changed, or gone. */
  private async check(batch: PlannedNarInfo[]) {
    const heads = await mapLimit(batch, this.checkConcurrency, (n) => this.blobs.head(n.key));
    const go: PlannedNarInfo[] = [];
    const changed: { planned: PlannedNarInfo; now: ObjectInfo }[] = [];
    const gone: PlannedNarInfo[] = [];
    batch.forEach((n, i) => {
      const h = heads[i];
      if (h === undefined) gone.push(n);
      else if (sameVersion(h, n)) go.push(n);
      else changed.push({ planned: n, now: h });
    });
    return { go, changed, gone };
  }

  /**
   * Narinfos refreshed or rewritten since the listing are live again: keep them and their
   * closures. Their references have not been deleted: every reference of a narinfo comes
   * after it in the deletion order.
   */
  private async spare(
    changedNow: { planned: PlannedNarInfo; now: ObjectInfo }[],
    plan: PrunePlan,
    overrides: Map<string, readonly string[]>,
    pending: Set<string>,
  ): Promise<void> {
    const changed = changedNow.map((c) => c.planned);
    // Read the versions check() just saw: no second HEAD.
    const fresh = changedNow.map((c) => c.now);
    const { reads: reread } = await readNarInfos(this.blobs, fresh, this.cache, {
      concurrency: this.readConcurrency,
      storeDir: this.storeDir,
    });
    for (const [key, read] of reread) overrides.set(hashPartOfNarInfoKey(key)!, read.references);
    const keep = plan.graph.closureOfNames(
      changed.map((n) => n.hashPart),
      overrides,
    );
    let spared = 0;
    for (const hp of keep) if (pending.delete(hp)) spared++;
    this.result.spared.push(...changed.map((n) => n.key));
    this.log.info(
      `prune: ${changed.length} narinfos were refreshed during the prune; kept with their closures (${spared} narinfos)`,
    );
  }

  /** Every batch at debug level; at info level the last one and one every few seconds. */
  private progress(msg: string, last: boolean, fields: Record<string, number>): void {
    const t = performance.now();
    if (last || t - this.lastInfo >= PROGRESS_INTERVAL_MS) {
      this.lastInfo = t;
      this.log.info(msg, fields);
    } else {
      this.log.debug(msg, fields);
    }
  }

  private async forget(hashParts: string[]): Promise<void> {
    if (!this.forgetPaths || hashParts.length === 0) return;
    try {
      await this.forgetPaths(hashParts);
    } catch (e) {
      // A stale index entry is safe: pushes confirm index-known references remotely.
      this.log.warn(`prune: could not update the local index: ${(e as Error).message}`);
    }
  }

  /** Delete NARs or listings in batches, skipping any rewritten since the listing. */
  async deleteObjects(
    objs: ListedObject[],
    into: Tally,
    what: string,
    intent: HeldCoordObject,
  ): Promise<void> {
    if (objs.length === 0) return;
    const batchSize = clampBatch(this.objectBatchSize, MAX_OBJECT_BATCH);
    let done = 0;
    for (const batch of chunks(objs, batchSize)) {
      if (this.stopped) return;
      const heads = await mapLimit(batch, this.checkConcurrency, (o) => this.blobs.head(o.key));
      const go = batch.filter((o, i) => heads[i] !== undefined && sameVersion(heads[i]!, o));
      const gone = batch.filter((_, i) => heads[i] === undefined).length;
      const kept = batch.length - go.length - gone;
      if (go.length > 0) {
        intent.assertHeld();
        await this.blobs.deleteMany(go.map((o) => o.key));
      }
      for (const o of go) add(into, o.size);
      this.result.alreadyGone += gone;
      done += batch.length;
      this.progress(`prune: deleted ${done}/${objs.length} ${what}`, done === objs.length, {
        batch: go.length,
        gone,
        rewritten: kept,
      });
    }
  }

  async abortUploads(uploads: PendingUpload[]): Promise<void> {
    if (uploads.length === 0) return;
    await mapLimit(uploads, this.checkConcurrency, async (u) => {
      if (this.stopped) return;
      await this.blobs.abortMultipartUpload(u.key, u.uploadId);
      this.result.deleted.staleUploads++;
    });
    this.log.info(`prune: aborted ${this.result.deleted.staleUploads} stale multipart uploads`);
  }
}
