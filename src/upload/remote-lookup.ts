import { mapLimit } from '../util/limit.js';
import { hashPartOfNarInfoKey, narInfoKey } from '../storage/keys.js';
import type { BlobStore } from '../storage/port.js';
import type { RemoteNarInfo } from './plan.js';

/** HEADs in flight at once: small-object latency, not bandwidth, is what limits them. */
export const HEAD_CONCURRENCY = 32;
/**
 * A listing page (up to 1,000 keys) costs about what one HEAD costs, so a listing is worth
 * trying for up to one page per this many questions: an empty or small bucket answers
 * hundreds of questions in one request, and a huge one costs at most this share extra
 * before we fall back to HEADs.
 */
export const QUESTIONS_PER_PAGE = 20;
/** Below this many questions, HEADs are as cheap as any listing. */
export const MIN_QUESTIONS_TO_LIST = 8;

/**
 * Which of these narinfos does the cache hold, and since when? Any error other than "not
 * found" throws: a failed check must never be read as "missing".
 */
export async function remoteNarInfos(
  blobs: BlobStore,
  hashParts: readonly string[],
): Promise<Map<string, RemoteNarInfo>> {
  if (hashParts.length >= MIN_QUESTIONS_TO_LIST) {
    const listed = await listWithin(
      blobs,
      hashParts,
      Math.ceil(hashParts.length / QUESTIONS_PER_PAGE),
    );
    if (listed) return listed;
  }
  const found = new Map<string, RemoteNarInfo>();
  await mapLimit(hashParts, HEAD_CONCURRENCY, async (hp) => {
    const head = await blobs.head(narInfoKey(hp));
    if (head) found.set(hp, { lastModified: head.lastModified });
  });
  return found;
}

/**
 * List the cache's root (narinfos, never walking nar/) if that takes at most `maxPages`
 * pages; `undefined` when the bucket is bigger than that.
 */
async function listWithin(
  blobs: BlobStore,
  hashParts: readonly string[],
  maxPages: number,
): Promise<Map<string, RemoteNarInfo> | undefined> {
  const wanted = new Set(hashParts);
  const found = new Map<string, RemoteNarInfo>();
  let seen = 0;
  for await (const o of blobs.list('', { recursive: false })) {
    // Pages hold up to 1,000 keys; past the budget, HEADs are cheaper.
    if (++seen > maxPages * 1000) return undefined;
    const hp = hashPartOfNarInfoKey(o.key);
    if (hp !== undefined && wanted.has(hp)) found.set(hp, { lastModified: o.lastModified });
  }
  return found;
}
