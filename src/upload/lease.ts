/**
 * The push side of the lease protocol (README, "Leases"). A push:
 *
 * 1. writes a lease naming its whole closure (hash parts) and the NAR keys it would write,
 *    before it trusts anything the cache holds;
 * 2. reads the prune intents; for each live one that names a path or NAR of its closure,
 *    waits until it is deleted (the prune finished) or has expired;
 * 3. re-checks, against the bucket, every cached path it relies on, and plans again if one
 *    is gone (it is then uploaded, under the same lease);
 * 4. publishes, each narinfo only while the lease is held (renewed every ttl/5 by a timer;
 *    held while the last renewal began less than ttl/2 ago);
 * 5. deletes the lease when done. A push killed before leaves it to expire after its ttl.
 *
 * A prune writes its intent before it reads the leases, and a push writes its lease before
 * it reads the intents, so of any prune and push that overlap at least one sees the other.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from '../util/log.js';
import { sleep } from '../util/limit.js';
import { storePathHashPart } from '../nix/store-path.js';
import type { PathInfo } from '../store/path-info.js';
import {
  DEFAULT_INTENT_TTL_MS,
  HeldCoordObject,
  LAST_MODIFIED_SLACK_MS,
  isExpired,
  readCoordObjects,
  type CoordReading,
  type CoordObject,
} from '../storage/coordination.js';
import { isNarInfoKey, narKey } from '../storage/keys.js';
import type { BlobStore } from '../storage/port.js';
import { NO_PRUNE_MARK, readPruneMark } from '../storage/prune-mark.js';
import type { PushPlan } from './plan.js';
import { remoteNarInfos } from './remote-lookup.js';

/** The protocol's steps, for tests that interleave a push with a prune deterministically. */
export type LeaseStep = 'lease-written' | 'intents-read' | 'rechecked' | 'releasing';

export interface LeaseOptions {
  /** How long the lease lasts without renewal (default 5 minutes). */
  ttlMs?: number;
  /** How often a conflicting prune intent is looked at again while waiting. Default 1 s. */
  pollMs?: number;
  /** Awaited after each step (tests). */
  hooks?: Partial<Record<LeaseStep, () => Promise<void> | void>>;
}

/**
 * A lease being taken (PushLease.start), so the caller can do other work while its round
 * trips run. Disposing of it releases the lease if it was taken, whoever awaited it.
 */
export class PendingLease {
  constructor(private readonly acquiring: Promise<PushLease>) {
    // Its error is the caller's through held(); if nobody asks, it has nothing to release.
    acquiring.catch(() => {});
  }

  /** The lease, once held; the error that stopped it otherwise. */
  held(): Promise<PushLease> {
    return this.acquiring;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    const lease = await this.acquiring.catch(() => undefined);
    await lease?.release();
  }
}

export class PushLease {
  private constructor(
    private readonly held: HeldCoordObject,
    private readonly blobs: BlobStore,
    private readonly opts: LeaseOptions,
  ) {}

  /**
   * acquire(), started now: on a free connection its PUT is written within this turn of
   * the event loop, ahead of whatever the caller starts after yielding one.
   */
  static start(...args: Parameters<typeof PushLease.acquire>): PendingLease {
    return new PendingLease(PushLease.acquire(...args));
  }

  /** Steps 1 and 2: write the lease, then wait out prune intents that touch the closure. */
  static async acquire(
    blobs: BlobStore,
    logger: Logger,
    closure: readonly PathInfo[],
    layout: { storeDir: string; extension: string },
    opts: LeaseOptions = {},
  ): Promise<PushLease> {
    const narInfos = closure.map((i) => storePathHashPart(i.path, layout.storeDir));
    const nars = closure.map((i) => narKey(i.narHash, layout.extension));
    // The intents and the prune mark are read alongside the HEAD that confirms the lease:
    // both reads come after the lease is written, which is all the protocol asks.
    const [held, [intents, mark]] = await HeldCoordObject.writeThenRead(
      blobs,
      'lease',
      { narInfos, nars },
      { ttlMs: opts.ttlMs },
      async () => {
        await opts.hooks?.['lease-written']?.();
        return Promise.all([readCoordObjects(blobs, 'loft-prune-intent'), readPruneMark(blobs)]);
      },
    );
    const lease = new PushLease(held, blobs, opts);
    try {
      const waited = await lease.waitForIntents(logger, intents, new Set(narInfos), new Set(nars));
      // A prune we waited for may have deleted (and rewritten the mark) after that read.
      lease.pruneMark = waited ? await readPruneMark(blobs) : mark;
      // Read while held: a prune that found the lease expired read the leases after this.
      held.assertHeld();
      await opts.hooks?.['intents-read']?.();
    } catch (e) {
      await held.release();
      throw e;
    }
    return lease;
  }

  /**
   * The bucket's prune mark, read after the prune intents were waited out and while the
   * lease is held: a prune that deletes any path of this closure after this push confirmed
   * or published it rewrites the mark after this reading (settled.ts relies on it).
   */
  pruneMark = NO_PRUNE_MARK;

  get key(): string {
    return this.held.key;
  }

  /**
   * Waits out the intents read that are live and name any of these paths or NARs, and any
   * malformed one; returns whether it waited.
   */
  private async waitForIntents(
    logger: Logger,
    { objects, malformed }: CoordReading,
    narInfos: ReadonlySet<string>,
    nars: ReadonlySet<string>,
  ): Promise<boolean> {
    const waitFor: CoordObject[] = objects.filter(
      (o) =>
        !isExpired(o, this.held.serverTimeAtLeast()) &&
        (o.narInfos.some((h) => narInfos.has(h)) || o.nars.some((k) => nars.has(k))),
    );
    for (const m of malformed) {
      // What it would delete is unknown: treat it as naming everything, for the default ttl.
      logger.warn(
        `push: prune intent ${m.key} is malformed (${m.problem}); waiting for it to expire`,
      );
      const head = await this.blobs.head(m.key);
      if (head) {
        waitFor.push({
          key: m.key,
          lastModified: head.lastModified,
          type: 'loft-prune-intent',
          version: 1,
          ttlSeconds: DEFAULT_INTENT_TTL_MS / 1000,
          owner: '',
          narInfos: [],
          nars: [],
        });
      }
    }
    const pollMs = this.opts.pollMs ?? 1000;
    for (const intent of waitFor) {
      const t0 = performance.now();
      logger.info(
        `push: a prune (${intent.owner || 'unknown'}) may delete paths of this closure; waiting for it to finish`,
        { intent: intent.key },
      );
      for (;;) {
        const head = await this.blobs.head(intent.key);
        if (head === undefined) break;
        const current = { ...intent, lastModified: head.lastModified };
        if (isExpired(current, this.held.serverTimeAtLeast())) break;
        await sleep(Math.min(pollMs, intent.ttlSeconds * 1000 + LAST_MODIFIED_SLACK_MS));
      }
      logger.info('push: the prune is done', {
        intent: intent.key,
        waitedMs: Math.round(performance.now() - t0),
      });
    }
    return waitFor.length > 0;
  }

  /**
   * Step 3: every cached path the plan relies on is asked of the bucket again (the local
   * index or an earlier answer may predate a prune). Returns the plan, or a new one made by
   * `replan` (which must ask the bucket, not the index) when any is gone.
   */
  async recheck(
    plan: PushPlan,
    storeDir: string,
    forget: (hashParts: string[]) => void,
    replan: () => Promise<PushPlan>,
  ): Promise<PushPlan> {
    const cached = plan.alreadyCached.map((c) => storePathHashPart(c.info.path, storeDir));
    const found = cached.length === 0 ? new Map() : await remoteNarInfos(this.blobs, cached);
    const gone = cached.filter((h) => !found.has(h));
    const out = gone.length === 0 ? plan : (forget(gone), await replan());
    await this.opts.hooks?.rechecked?.();
    return out;
  }

  /**
   * The bucket as the publishing steps should use it: a narinfo is written (or refreshed)
   * only while the lease is held, so nothing is published on top of a path a prune may
   * have deleted after the lease lapsed.
   */
  guard(blobs: BlobStore): BlobStore {
    const held = this.held;
    return {
      id: blobs.id,
      description: blobs.description,
      check: () => blobs.check(),
      warm: () => blobs.warm?.(),
      head: (k) => blobs.head(k),
      get: (k, o) => blobs.get(k, o),
      put: (k, b, o) => {
        if (isNarInfoKey(k)) held.assertHeld();
        return blobs.put(k, b, o);
      },
      upload: (k, s, o) => blobs.upload(k, s, o),
      list: (p, o) => blobs.list(p, o),
      deleteMany: (ks) => blobs.deleteMany(ks),
      copy: (a, b, o) => {
        held.assertHeld();
        return blobs.copy(a, b, o);
      },
      listMultipartUploads: (p) => blobs.listMultipartUploads(p),
      abortMultipartUpload: (k, u) => blobs.abortMultipartUpload(k, u),
      close: () => blobs.close(),
    };
  }

  /** Step 5: delete the lease (a failure leaves it to expire). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }

  async release(): Promise<void> {
    try {
      await this.opts.hooks?.releasing?.();
    } finally {
      await this.held.release();
    }
  }

  /** Tests: stop renewing, as a killed process would. */
  abandon(): void {
    this.held.abandon();
  }
}
