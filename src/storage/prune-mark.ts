/**
 * The prune mark, `loft/prune-mark.json`: every prune rewrites it after its last reading of
 * the leases and before its first delete, with a body no other write has (a random id), so
 * reading it tells whether any prune may have deleted something since a given reading.
 *
 * A push that took its lease reads the mark (after waiting out prune intents, before it
 * releases the lease) and records it in the local index beside each path it confirmed or
 * published. A later push that would publish nothing may then trust those index entries
 * without a lease when the bucket still shows the same mark (README, "Leases": why that is
 * enough). The key has a `/`, so the root listing never sees it, and prune never deletes it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { BlobStore } from './port.js';

export const PRUNE_MARK_KEY = 'loft/prune-mark.json';

/** The mark of a bucket that no prune (of a Loft that writes marks) has deleted from. */
export const NO_PRUNE_MARK = 'none';

/** Rewrite the mark (a prune, after reading the leases, before deleting anything). */
export async function writePruneMark(blobs: BlobStore): Promise<void> {
  const body = {
    type: 'loft-prune-mark',
    version: 1,
    owner: `${hostname()} ${process.pid}`,
    id: randomBytes(16).toString('hex'),
    at: new Date().toISOString(),
  };
  await blobs.put(PRUNE_MARK_KEY, JSON.stringify(body), { contentType: 'application/json' });
}

/**
 * The mark as the bucket shows it now: a digest of the object's bytes (every write differs,
 * so equal digests mean no prune wrote it in between), or NO_PRUNE_MARK when there is none.
 * Errors throw: a failed read never counts as "unchanged".
 */
export async function readPruneMark(blobs: BlobStore): Promise<string> {
  const body = await blobs.get(PRUNE_MARK_KEY);
  if (body === undefined) return NO_PRUNE_MARK;
  return createHash('sha256').update(body).digest('hex').slice(0, 32);
}
