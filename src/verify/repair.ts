/**
 * `--verify --repair`: re-upload, through the normal push pipeline, what the local store
 * still has of the paths `--verify` found damaged. Nothing is deleted: a damaged narinfo
 * is overwritten by a sound one, a damaged NAR by its own bytes again.
 *
 * The plan is pure (`planRepair`: findings -> hash parts to re-upload, and what cannot be
 * repaired); the executor finds the store paths and pushes them. The push sees the bucket
 * through `hidingNarInfos`, in which the damaged paths' narinfos do not exist, so it plans
 * them as missing and rewrites NAR and narinfo in closure order, exactly as a first upload.
 */
import type { Readable } from 'node:stream';
import { narInfoKey, hashPartOfNarInfoKey } from '../storage/keys.js';
import type { BlobStore } from '../storage/port.js';
import { push, type PushContext, type PushOptions, type PushResult } from '../upload/push.js';
import { describeError } from '../util/errors.js';
import { FINDING_KINDS, type Finding } from './findings.js';

export interface RepairPlan {
  /** Hash parts whose narinfo (and NAR) must be written again: their narinfo is hidden. */
  rewrite: string[];
  /** Hash parts with no narinfo that a narinfo references: uploaded as new. */
  missing: string[];
  /** Damage a re-upload cannot fix, with why. */
  unrepairable: { finding: Finding; reason: string }[];
}

export function planRepair(findings: readonly Finding[]): RepairPlan {
  const rewrite = new Set<string>();
  const missing = new Set<string>();
  const unrepairable: RepairPlan['unrepairable'] = [];
  for (const f of findings) {
    if (FINDING_KINDS[f.kind].severity !== 'damage') continue;
    if (f.kind === 'missing-reference') {
      const hp = f.missingKey === undefined ? undefined : hashPartOfNarInfoKey(f.missingKey);
      if (hp !== undefined) missing.add(hp);
    } else if (f.kind === 'cache-info') {
      // A missing one is written by the push; a wrong one means another store's cache.
      if (f.detail !== 'missing') {
        unrepairable.push({ finding: f, reason: 'fix or remove nix-cache-info by hand' });
      }
    } else if (f.hashPart !== undefined) {
      rewrite.add(f.hashPart);
    } else {
      unrepairable.push({ finding: f, reason: 'not about a store path' });
    }
  }
  for (const hp of rewrite) missing.delete(hp);
  return { rewrite: [...rewrite].sort(), missing: [...missing].sort(), unrepairable };
}

/**
 * The bucket as the push should see it: the given narinfos absent from head, get and list.
 * Writes go through, so the push overwrites them.
 */
export function hidingNarInfos(inner: BlobStore, hashParts: Iterable<string>): BlobStore {
  const hidden = new Set([...hashParts].map((hp) => narInfoKey(hp)));
  const view: BlobStore = {
    id: inner.id,
    description: inner.description,
    check: () => inner.check(),
    warm: () => inner.warm?.(),
    head: async (k) => (hidden.has(k) ? undefined : inner.head(k)),
    get: async (k, o) => (hidden.has(k) ? undefined : inner.get(k, o)),
    getStream: async (k, o): Promise<Readable | undefined> =>
      hidden.has(k) || inner.getStream === undefined ? undefined : inner.getStream(k, o),
    put: (k, b, o) => inner.put(k, b, o),
    upload: (k, s, o) => inner.upload(k, s, o),
    list: (p, o) => filtered(inner.list(p, o), hidden),
    deleteMany: (ks) => inner.deleteMany(ks),
    copy: (a, b, o) => inner.copy(a, b, o),
    listMultipartUploads: (p) => inner.listMultipartUploads(p),
    abortMultipartUpload: (k, u) => inner.abortMultipartUpload(k, u),
    close: () => inner.close(),
  };
  return view;
}

async function* filtered<T extends { key: string }>(
  source: AsyncIterable<T>,
  hidden: ReadonlySet<string>,
): AsyncIterable<T> {
  for await (const o of source) if (!hidden.has(o.key)) yield o;
}

export interface RepairContext extends PushContext {
  store: PushContext['store'] & { pathFromHashPart(hashPart: string): Promise<string | undefined> };
}

export interface RepairResult {
  /** Store paths pushed again. */
  pushed: string[];
  /** What could not be repaired: the key or hash part, and why. */
  notRepaired: { what: string; reason: string }[];
  push: PushResult | undefined;
}

export async function executeRepair(
  ctx: RepairContext,
  plan: RepairPlan,
  opts: PushOptions,
): Promise<RepairResult> {
  const notRepaired: RepairResult['notRepaired'] = plan.unrepairable.map((u) => ({
    what: u.finding.key,
    reason: `${u.finding.detail}: ${u.reason}`,
  }));
  const roots: string[] = [];
  for (const hp of [...plan.rewrite, ...plan.missing]) {
    const path = await ctx.store.pathFromHashPart(hp);
    if (path === undefined) {
      notRepaired.push({ what: narInfoKey(hp), reason: 'the local store does not have this path' });
    } else roots.push(path);
  }
  if (roots.length === 0) return { pushed: [], notRepaired, push: undefined };
  const view = hidingNarInfos(ctx.blobs, plan.rewrite);
  // The local index would call the hidden paths cached: ask the (filtered) bucket instead.
  const result = await push({ ...ctx, blobs: view }, roots, { ...opts, ignoreIndex: true });
  const uploaded = new Set(result.uploaded.map((u) => u.path));
  for (const f of result.failed) {
    notRepaired.push({
      what: f.path,
      reason: `upload failed: ${describeError(f.error).split('\n')[0]}`,
    });
  }
  const failed = new Set(result.failed.map((f) => f.path));
  for (const r of roots) {
    if (!uploaded.has(r) && !failed.has(r)) {
      notRepaired.push({
        what: r,
        reason: 'not uploaded (signed by a key in skip_signed_by_keys, or stopped early)',
      });
    }
  }
  return { pushed: roots.filter((r) => uploaded.has(r)), notRepaired, push: result };
}
