// keys.js and port.js, not index.js: a push to a local directory need not load the AWS SDK.
import { CACHE_INFO_KEY, CONTENT_TYPES } from '../storage/keys.js';
import type { BlobStore } from '../storage/port.js';
import { formatCacheInfo, parseCacheInfo } from '../nix/cache-info.js';
import { CacheInfoInvalidError, CacheStoreDirMismatchError } from './errors.js';

/**
 * Make sure the cache has a nix-cache-info for our store directory. Written only when
 * missing (clients cache it for days; rewriting it gains nothing); a cache for another
 * store directory is refused, since its paths could never be substituted here.
 */
export async function ensureCacheInfo(
  blobs: BlobStore,
  storeDir: string,
): Promise<'present' | 'written'> {
  // Once per bucket and process: the service pushes many batches into the same cache.
  if (confirmed.get(blobs) === storeDir) return 'present';
  const result = await checkOrWrite(blobs, storeDir);
  confirmed.set(blobs, storeDir);
  return result;
}

const confirmed = new WeakMap<BlobStore, string>();

async function checkOrWrite(blobs: BlobStore, storeDir: string): Promise<'present' | 'written'> {
  const existing = await blobs.get(CACHE_INFO_KEY);
  if (existing === undefined) {
    await blobs.put(CACHE_INFO_KEY, formatCacheInfo(storeDir), {
      contentType: CONTENT_TYPES.cacheInfo,
    });
    return 'written';
  }
  const theirs = parseCacheInfo(existing.toString('utf8')).storeDir;
  if (theirs === undefined) {
    throw new CacheInfoInvalidError(blobs.description, 'it has no StoreDir line');
  }
  if (theirs !== storeDir)
    throw new CacheStoreDirMismatchError(blobs.description, theirs, storeDir);
  return 'present';
}
