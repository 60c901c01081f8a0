/**
 * Run a prune against the bucket alone: read it, plan (plan.ts), then delete (the batches
 * in delete-batches.ts) in an order that keeps the cache closure-complete at every moment,
 * so a crash anywhere leaves a valid cache and the next run finishes the job. This file
 * owns the protocol around the deletes: listings, the intent, re-reading, re-planning.
 *
 * Concurrent pushers (other machines) are handled by three re-checks on top of the
 * refresh-on-use rule (the README's prune section has the full argument):
 * 1. `now` is read before the first listing, so anything written later is younger than it.
 * 2. Just before deleting, the root is listed again: narinfos that appeared or changed since
 *    the first listing are read and pinned (kept with their closures), and the plan is
 *    remade from this newer view.
 * 3. Each batch is checked with HEAD right before its delete: a narinfo refreshed or
 *    rewritten since the listing is spared with its closure (still intact, because
 *    referrers go first); a NAR or listing rewritten since is kept.
 * The NAR phase lists the root once more, so a narinfo published during the narinfo phase
 * keeps its NAR.
 *
 * Pushes of this Loft are protected by the lease protocol (README, "Leases"): before
 * deleting anything the prune writes an intent naming every narinfo and NAR it may delete,
 * then reads the leases and pins, then lists the root again (rule 2), and deletes only
 * what the intent names and no live lease, pin or newer narinfo protects, while its
 * intent is held.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from '../util/log.js';
import type { BlobStore, ListedObject, PendingUpload } from '../storage/port.js';
import { HeldCoordObject, isExpired, readCoordObjects } from '../storage/coordination.js';
import { writePruneMark } from '../storage/prune-mark.js';
import { BatchDeleter } from './delete-batches.js';
import { PruneIncompleteError } from './errors.js';
import type { NarInfoRead } from './narinfo-read.js';
import { narInfoDeletions, planPrune, type PruneInput } from './plan.js';
import type { PrunePolicy } from './policy.js';
import { readProtections, type Protections } from './protection.js';
import { countFields, emptyResult, planFields, type PruneResult } from './report.js';
import {
  NarInfoCache,
  changedNarInfoKeys,
  listNars,
  listRoot,
  listUploads,
  readNarInfos,
  readStoreDir,
} from './snapshot.js';

export { MAX_NARINFO_BATCH, MAX_OBJECT_BATCH } from './delete-batches.js';
export type { PruneResult } from './report.js';

/** Leases and intents expired longer ago than this are deleted. */
const STALE_COORD_MS = 3_600_000;

export interface PruneDeps {
  blobs: BlobStore;
  logger: Logger;
  policy: PrunePolicy;
  /** Forget deleted paths in the local index (`LocalIndex.forgetPresent`). */
  forget?: (hashParts: readonly string[]) => unknown;
  /** Parsed narinfos kept between runs (the service passes the same one each time). */
  narInfoCache?: NarInfoCache;
}

/** The protocol's steps, for tests that interleave a push with a prune deterministically. */
export type PruneStep =
  | 'planned'
  | 'intent-written'
  | 'protections-read'
  | 'relisted'
  | 'narinfos-deleted'
  | 'nars-deleted';

export interface PruneOptions {
  /** Plan and report; delete nothing. */
  dryRun?: boolean;
  /** The clock (tests inject it); read once, before the first listing. */
  now?: Date;
  /** Stop between batches: what was deleted stays deleted, the rest waits for the next run. */
  signal?: AbortSignal;
  /** Narinfo GETs in flight. Default 16. */
  readConcurrency?: number;
  /** HEADs in flight when checking a batch. Default 32. */
  checkConcurrency?: number;
  /** Narinfos per delete request (each with its listing). Default and maximum 500. */
  narInfoBatchSize?: number;
  /** NARs and listings per delete request. Default and maximum 1000. */
  objectBatchSize?: number;
  /** Awaited after each step of the protocol (tests). */
  hooks?: Partial<Record<PruneStep, () => Promise<void> | void>>;
  /** How long the prune's intent lasts without renewal (tests; default 5 minutes). */
  intentTtlMs?: number;
}

export async function prune(deps: PruneDeps, opts: PruneOptions = {}): Promise<PruneResult> {
  return new PruneRun(deps, opts).run();
}

class PruneRun {
  private readonly blobs: BlobStore;
  private readonly log: Logger;
  private readonly cache: NarInfoCache;
  private readonly now: Date;
  private readonly t0 = performance.now();
  private readonly readConcurrency: number;
  private readonly checkConcurrency: number;
  private storeDir: string | undefined;
  private batchDeleter: BatchDeleter | undefined;
  private stage = 'listing the cache';
  private readonly result: PruneResult;

  constructor(
    private readonly deps: PruneDeps,
    private readonly opts: PruneOptions,
  ) {
    this.blobs = deps.blobs;
    this.log = deps.logger;
    this.cache = deps.narInfoCache ?? new NarInfoCache();
    // Before any listing: everything written after this moment counts as younger (rule 1).
    this.now = opts.now ?? new Date();
    this.readConcurrency = Math.max(1, opts.readConcurrency ?? 16);
    this.checkConcurrency = Math.max(1, opts.checkConcurrency ?? 32);
    this.result = emptyResult(opts.dryRun ?? false);
  }

  private get stopped(): boolean {
    return this.opts.signal?.aborted === true;
  }

  async run(): Promise<PruneResult> {
    try {
      await this.execute();
    } catch (e) {
      // Stopped on purpose: whatever the in-flight request threw (the signal's reason, or
      // the storage's "aborted"), the prune was interrupted, not broken.
      if (this.stopped) {
        this.result.interrupted = true;
      } else {
        const d = this.result.deleted;
        throw new PruneIncompleteError(
          {
            narInfos: d.narInfos.count,
            nars: d.releasedNars.count + d.orphanNars.count,
          },
          this.stage,
          e,
        );
      }
    }
    this.result.ms = performance.now() - this.t0;
    if (this.result.interrupted) {
      this.log.warn(
        'prune: stopped early; the next prune finishes the job',
        countFields(this.result),
      );
    } else if (!this.result.dryRun) {
      this.log.info('prune: done', { ...countFields(this.result), ms: Math.round(this.result.ms) });
    }
    return this.result;
  }

  /** The deleting half; made once the store dir is known (narinfos are read again there). */
  private deleter(): BatchDeleter {
    this.batchDeleter ??= new BatchDeleter({
      blobs: this.blobs,
      log: this.log,
      result: this.result,
      cache: this.cache,
      storeDir: this.storeDir,
      readConcurrency: this.readConcurrency,
      checkConcurrency: this.checkConcurrency,
      narInfoBatchSize: this.opts.narInfoBatchSize,
      objectBatchSize: this.opts.objectBatchSize,
      signal: this.opts.signal,
      forget: this.deps.forget,
    });
    return this.batchDeleter;
  }

  private async hook(step: PruneStep): Promise<void> {
    await this.opts.hooks?.[step]?.();
  }

  private async execute(): Promise<void> {
    this.log.info(`prune: reading ${this.blobs.description}`, { now: this.now.toISOString() });
    // Independent listings, together: on a big bucket each is many pages of round trips.
    // Pins and leases read now shape the plan a dry run shows (and the intent); the
    // deleting run reads them again after writing its intent, and that reading decides.
    const [root1, nars, uploads, protections1] = await Promise.all([
      listRoot(this.blobs),
      listNars(this.blobs),
      listUploads(this.blobs),
      readProtections(this.blobs, this.now.getTime()),
    ]);
    this.storeDir = await readStoreDir(this.blobs, root1);
    this.result.protections = protections1;

    this.stage = 'reading narinfos';
    const reads = await this.read(root1);
    this.cache.retainOnly(new Set(root1.map((o) => o.key)));
    const plan = planPrune({
      now: this.now,
      policy: this.deps.policy,
      objects: [...root1, ...nars],
      narInfos: reads,
      uploads,
      ...protectionInput(protections1),
    });
    plan.warnings.unshift(...protections1.warnings);
    this.result.plan = plan;
    for (const w of plan.warnings) this.log.warn(`prune: ${w}`);
    this.log.info('prune: plan', planFields(plan));
    await this.hook('planned');
    if (this.result.dryRun) return;
    if (this.stopped) {
      this.result.interrupted = true;
      return;
    }

    const doomed = narInfoDeletions(plan).map((n) => n.hashPart);
    const doomedNars = [...plan.releasedNars, ...plan.orphanNars].map((o) => o.key);
    if (doomed.length > 0 || doomedNars.length > 0 || plan.orphanListings.length > 0) {
      // The intent comes before the last reading of leases and pins, and that before the
      // second listing: a push whose lease this reading misses either reads the intent
      // after writing its lease (and waits), or had finished, so the second listing sees
      // everything it published.
      this.stage = 'writing the prune intent';
      const intent = await HeldCoordObject.write(
        this.blobs,
        'prune intent',
        { narInfos: doomed, nars: doomedNars },
        { ttlMs: this.opts.intentTtlMs },
      );
      try {
        await this.hook('intent-written');
        await this.deleteUnderIntent(intent, {
          root1,
          reads,
          nars,
          uploads,
          doomed: new Set(doomed),
          doomedNars: new Set(doomedNars),
        });
      } finally {
        await intent.release();
      }
      if (this.stopped) return;
    }
    this.stage = 'aborting stale multipart uploads';
    await this.deleter().abortUploads(plan.staleUploads);
    this.stage = 'deleting stale leases and intents';
    await this.deleteStaleCoordination();
  }

  /**
   * Leases of killed pushes and intents of killed prunes, long expired: deleted. "Long"
   * (an hour past expiry, by server time) so that no renewal still in flight is lost.
   */
  private async deleteStaleCoordination(): Promise<void> {
    const probe = await HeldCoordObject.write(
      this.blobs,
      'prune intent',
      { narInfos: [], nars: [] },
      { ttlMs: this.opts.intentTtlMs },
    );
    const serverNow = probe.serverTimeAtLeast();
    await probe.release();
    const [leases, intents] = await Promise.all([
      readCoordObjects(this.blobs, 'loft-lease'),
      readCoordObjects(this.blobs, 'loft-prune-intent'),
    ]);
    const stale = [...leases.objects, ...intents.objects]
      .filter((o) => o.key !== probe.key && isExpired(o, serverNow - STALE_COORD_MS))
      .map((o) => o.key);
    if (stale.length === 0) return;
    await this.blobs.deleteMany(stale);
    this.log.info(`prune: deleted ${stale.length} leases and intents expired over an hour ago`);
  }

  private async deleteUnderIntent(
    intent: HeldCoordObject,
    v: {
      root1: ListedObject[];
      reads: Map<string, NarInfoRead>;
      nars: ListedObject[];
      uploads: PendingUpload[];
      doomed: Set<string>;
      doomedNars: Set<string>;
    },
  ): Promise<void> {
    this.stage = 'reading pins and leases';
    // A lease is expired only if it was by server time now, which is before the second
    // listing: a push whose lease had lapsed published nothing after that (README).
    const protections = await readProtections(this.blobs, intent.serverTimeAtLeast());
    this.result.protections = protections;
    for (const w of protections.warnings) this.log.warn(`prune: ${w}`);
    if (protections.leases.length > 0) {
      this.log.info(`prune: ${protections.leases.length} live push leases; what they name is kept`);
    }
    await this.hook('protections-read');

    // Rule 2: look again right before deleting, and keep whatever is new since.
    this.stage = 'listing the cache again';
    // The mark after the leases are read and before any delete: pushes with nothing to
    // publish trust their index only while it is unchanged (src/upload/settled.ts).
    const [root2] = await Promise.all([listRoot(this.blobs), writePruneMark(this.blobs)]);
    const pinned = changedNarInfoKeys(v.root1, root2);
    const reads2 = pinned.size === 0 ? v.reads : await this.read(root2);
    if (pinned.size > 0) {
      this.log.info(`prune: ${pinned.size} narinfos were written while reading; they are kept`);
    }
    await this.hook('relisted');
    const planFinal = planPrune({
      now: this.now,
      policy: this.deps.policy,
      objects: [...root2, ...v.nars],
      narInfos: reads2,
      uploads: v.uploads,
      pinned,
      ...protectionInput(protections),
      onlyDelete: v.doomed,
      onlyDeleteNars: v.doomedNars,
    });

    this.stage = 'deleting narinfos';
    const deletedNarKeys = await this.deleter().deleteNarInfos(planFinal, intent);
    if (this.stopped) {
      this.result.interrupted = true;
      return;
    }
    await this.hook('narinfos-deleted');

    // The NAR phase works from a fresh look at the narinfos (rule 3 for NARs).
    this.stage = 'listing the cache before deleting NARs';
    const root3 = await listRoot(this.blobs);
    const reads3 = await this.read(root3);
    const plan3 = planPrune({
      now: this.now,
      policy: this.deps.policy,
      objects: [...root3, ...v.nars],
      narInfos: reads3,
      uploads: v.uploads,
      released: deletedNarKeys,
      keepNarInfos: true,
      ...protectionInput(protections),
      onlyDeleteNars: v.doomedNars,
    });
    this.stage = 'deleting NARs';
    const d = this.result.deleted;
    const deleter = this.deleter();
    await deleter.deleteObjects(plan3.releasedNars, d.releasedNars, 'NARs', intent);
    await deleter.deleteObjects(plan3.orphanNars, d.orphanNars, 'orphan NARs', intent);
    await deleter.deleteObjects(plan3.orphanListings, d.orphanListings, 'orphan listings', intent);
    if (this.stopped) {
      this.result.interrupted = true;
      return;
    }
    await this.hook('nars-deleted');
  }

  /** Read the narinfos of a listing; unchanged ones come from the cache of readings. */
  private async read(root: readonly ListedObject[]): Promise<Map<string, NarInfoRead>> {
    let lastLog = performance.now();
    const { reads, fetched } = await readNarInfos(this.blobs, root, this.cache, {
      concurrency: this.readConcurrency,
      storeDir: this.storeDir,
      signal: this.opts.signal,
      onRead: (done, total) => {
        if (performance.now() - lastLog > 5000 || done === total) {
          lastLog = performance.now();
          this.log.info(`prune: read ${done}/${total} narinfos`);
        }
      },
    });
    this.result.narInfosFetched += fetched;
    return reads;
  }
}

function protectionInput(p: Protections): Pick<PruneInput, 'pins' | 'leased' | 'leasedNars'> {
  return { pins: p.pinnedHashParts, leased: p.leasedHashParts, leasedNars: p.leasedNars };
}
