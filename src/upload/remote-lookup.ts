import { mapLimit } from '../util/limit.js';
import { hashPartOfNarInfoKey, narInfoKey } from '../storage/keys.js';
import type { BlobStore } from '../storage/port.js';
import type { RemoteNarInfo } from './plan.js';

/** Above this many questions, one listing of the cache's narinfos beats one HEAD each. */
export const LIST_THRESHOLD = 2000;
/** HEADs in flight at once: small-object latency, not bandwidth, is what limits them. */
export const HEAD_CONCURRENCY = 32;

/**
 * Which of these narinfos does the cache hold, and since when? Parallel HEADs for a few,
 * one listing (without walking nar/) for many. Any error other than "not found" throws:
 * a failed check must never be read as "missing".
 */
export async function remoteNarInfos(
  blobs: BlobStore,
  hashParts: readonly string[],
): Promise<Map<string, RemoteNarInfo>> {
  const found = new Map<string, RemoteNarInfo>();
  if (hashParts.length > LIST_THRESHOLD) {
    const wanted = new Set(hashParts);
    for await (const o of blobs.list('', { recursive: false })) {
      const hp = hashPartOfNarInfoKey(o.key);
      if (hp !== undefined && wanted.has(hp)) found.set(hp, { lastModified: o.lastModified });
    }
    return found;
  }
  await mapLimit(hashParts, HEAD_CONCURRENCY, async (hp) => {
    const head = await blobs.head(narInfoKey(hp));
    if (head) found.set(hp, { lastModified: head.lastModified });
  });
  return found;
}
