/**
 * Fill the local index from the bucket: one listing of the cache's top level (narinfos,
 * never `nar/`), each narinfo recorded as present with its LastModified as the narinfo
 * time, in pages of one transaction each. Entries already in the index are updated;
 * nothing is removed (a path the bucket lost is found out by the next push that relies
 * on it, which confirms such paths remotely).
 */
import type { BlobStore } from '../storage/port.js';
import { hashPartOfNarInfoKey } from '../storage/keys.js';
import type { LocalIndex, PresentPath } from '../index/local-index.js';

export interface PopulateResult {
  /** Narinfos listed (and recorded). */
  narInfos: number;
  ms: number;
}

const PAGE = 2000;

export async function populateIndex(
  blobs: Pick<BlobStore, 'list'>,
  index: Pick<LocalIndex, 'recordPresent'>,
  opts: { signal?: AbortSignal; onPage?: (recorded: number) => void } = {},
): Promise<PopulateResult> {
  const t0 = Date.now();
  let page: PresentPath[] = [];
  let total = 0;
  const flush = () => {
    if (page.length === 0) return;
    index.recordPresent(page);
    total += page.length;
    page = [];
    opts.onPage?.(total);
  };
  for await (const o of blobs.list('', { recursive: false })) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    const hashPart = hashPartOfNarInfoKey(o.key);
    if (hashPart === undefined) continue;
    page.push({ hashPart, narinfoTime: o.lastModified.getTime() });
    if (page.length >= PAGE) flush();
  }
  flush();
  return { narInfos: total, ms: Date.now() - t0 };
}
