/**
 * Reading the bucket for a prune: the root listing (narinfos, listings, `nix-cache-info`,
 * without walking `nar/`), the `nar/` listing, pending multipart uploads, and every
 * narinfo's text, fetched in parallel and remembered between runs by (key, LastModified,
 * size) so a service pruning on a schedule re-reads only what changed.
 */
import { SignalFanout } from '../util/signal-fanout.js';
import type { BlobStore, ListedObject, PendingUpload } from '../storage/port.js';
import { CACHE_INFO_KEY, NAR_PREFIX, hashPartOfNarInfoKey } from '../storage/keys.js';
import { mapLimit } from '../util/limit.js';
import { parseCacheInfo } from '../nix/cache-info.js';
import { readNarInfo, type NarInfoRead } from './narinfo-read.js';

/**
 * S3 reports LastModified to the second in HEAD (an HTTP date) and sometimes to the
 * millisecond in listings, so versions are compared at one-second resolution.
 */
export function sameVersion(
  a: { size: number; lastModified: Date },
  b: { size: number; lastModified: Date },
): boolean {
  return (
    a.size === b.size &&
    Math.floor(a.lastModified.getTime() / 1000) === Math.floor(b.lastModified.getTime() / 1000)
  );
}

/** A copy of `s` that shares no memory with the string it was cut from. */
function ownCopy(s: string): string {
  return Buffer.from(s, 'latin1').toString('latin1');
}

/**
 * Parsed narinfos by key, valid while the object's LastModified and size are unchanged
 * (a narinfo is rewritten whole, and a refresh moves its LastModified). Entries hold only
 * hash parts and a key. Hash parts are interned: one string per path however many
 * narinfos reference it, and none keeps the narinfo text it was cut from alive (V8 keeps
 * the parent of a sliced string), so a service remembering a million narinfos holds tens
 * of megabytes, not the texts.
 */
export class NarInfoCache {
  readonly #entries = new Map<string, { size: number; lastModified: Date; read: NarInfoRead }>();
  #strings = new Map<string, string>();

  #intern(s: string): string {
    let v = this.#strings.get(s);
    if (v === undefined) {
      v = ownCopy(s);
      this.#strings.set(v, v);
    }
    return v;
  }

  get(o: ListedObject): NarInfoRead | undefined {
    const e = this.#entries.get(o.key);
    return e && sameVersion(e, o) ? e.read : undefined;
  }

  /** Remember a reading; returns the stored (interned) copy to use instead of `read`. */
  set(o: ListedObject, read: NarInfoRead): NarInfoRead {
    const stored: NarInfoRead = {
      ...read,
      references: read.references.map((r) => this.#intern(r)),
      narKey: read.narKey === undefined ? undefined : ownCopy(read.narKey),
    };
    this.#entries.set(ownCopy(o.key), { size: o.size, lastModified: o.lastModified, read: stored });
    return stored;
  }

  /** Forget every key not in `keys` (deleted from the bucket), and strings no entry uses. */
  retainOnly(keys: ReadonlySet<string>): void {
    for (const k of this.#entries.keys()) if (!keys.has(k)) this.#entries.delete(k);
    const used = new Map<string, string>();
    for (const e of this.#entries.values()) {
      for (const r of e.read.references) used.set(r, r);
    }
    this.#strings = used;
  }

  get size(): number {
    return this.#entries.size;
  }
}

export async function listRoot(blobs: BlobStore): Promise<ListedObject[]> {
  const out: ListedObject[] = [];
  for await (const o of blobs.list('', { recursive: false })) out.push(o);
  return out;
}

export async function listNars(blobs: BlobStore): Promise<ListedObject[]> {
  const out: ListedObject[] = [];
  for await (const o of blobs.list(NAR_PREFIX)) out.push(o);
  return out;
}

export async function listUploads(blobs: BlobStore): Promise<PendingUpload[]> {
  const out: PendingUpload[] = [];
  for await (const u of blobs.listMultipartUploads()) out.push(u);
  return out;
}

/** The cache's store directory, from `nix-cache-info` (narinfos name paths inside it). */
export async function readStoreDir(
  blobs: BlobStore,
  root: readonly ListedObject[],
): Promise<string | undefined> {
  if (!root.some((o) => o.key === CACHE_INFO_KEY)) return undefined;
  const body = await blobs.get(CACHE_INFO_KEY);
  return body === undefined ? undefined : parseCacheInfo(body.toString('utf8')).storeDir;
}

export interface ReadOptions {
  concurrency: number;
  storeDir: string | undefined;
  signal?: AbortSignal;
  /** Called after each fetched narinfo with (fetched so far, to fetch). */
  onRead?: (done: number, total: number) => void;
}

/**
 * The reading of every narinfo among `objects`, by key. A narinfo deleted since the listing
 * has no entry. Any other failure to fetch throws: a prune never guesses what it cannot read.
 */
export async function readNarInfos(
  blobs: BlobStore,
  objects: readonly ListedObject[],
  cache: NarInfoCache,
  opts: ReadOptions,
): Promise<{ reads: Map<string, NarInfoRead>; fetched: number }> {
  const reads = new Map<string, NarInfoRead>();
  const toFetch: { o: ListedObject; hashPart: string }[] = [];
  for (const o of objects) {
    const hashPart = hashPartOfNarInfoKey(o.key);
    if (hashPart === undefined) continue;
    const cached = cache.get(o);
    if (cached) reads.set(o.key, cached);
    else toFetch.push({ o, hashPart });
  }
  let done = 0;
  let failed = false;
  // One listener on the shared signal, not one per request in flight (no leak warning).
  const fanout = new SignalFanout(opts.signal);
  try {
    await mapLimit(toFetch, opts.concurrency, async ({ o, hashPart }) => {
      // After one failure the whole read fails: the other workers stop asking.
      if (failed) return;
      opts.signal?.throwIfAborted();
      const body = await fanout
        .run((signal) => blobs.get(o.key, { signal }))
        .catch((e: unknown) => {
          failed = true;
          throw e;
        });
      if (body !== undefined) {
        reads.set(o.key, cache.set(o, readNarInfo(body.toString('utf8'), hashPart, opts.storeDir)));
      }
      opts.onRead?.(++done, toFetch.length);
    });
  } finally {
    fanout.dispose();
  }
  return { reads, fetched: toFetch.length };
}

/** Narinfo keys of `now` that are not in `before` or differ from it (new or rewritten). */
export function changedNarInfoKeys(
  before: readonly ListedObject[],
  now: readonly ListedObject[],
): Set<string> {
  const old = new Map(before.map((o) => [o.key, o]));
  const out = new Set<string>();
  for (const o of now) {
    if (hashPartOfNarInfoKey(o.key) === undefined) continue;
    const b = old.get(o.key);
    if (!b || !sameVersion(b, o)) out.add(o.key);
  }
  return out;
}
