/**
 * What a prune reads besides the cache itself: the pins (paths never pruned) and the live
 * leases of pushes in flight. Malformed objects are skipped with a warning naming the key;
 * they never stop a prune, and skipping one never adds a deletion the plan would not make
 * without that object.
 */
import { isExpired, readCoordObjects, type CoordObject } from '../storage/coordination.js';
import { readPins, type StoredPin } from '../storage/pins.js';
import type { BlobStore } from '../storage/port.js';

export interface Protections {
  pins: StoredPin[];
  /** Live leases (not expired by the server-time bound given). */
  leases: CoordObject[];
  /** Leases found expired: they protect nothing. */
  expiredLeases: CoordObject[];
  pinnedHashParts: Set<string>;
  leasedHashParts: Set<string>;
  leasedNars: Set<string>;
  warnings: string[];
}

/**
 * Read pins and leases. `serverNowAtLeast`: a lower bound of the server's time (ms) at a
 * moment before anything this prune will delete was decided; a lease is expired only if it
 * had expired by then.
 */
export async function readProtections(
  blobs: BlobStore,
  serverNowAtLeast: number,
): Promise<Protections> {
  const [pinRead, leaseRead] = await Promise.all([
    readPins(blobs),
    readCoordObjects(blobs, 'loft-lease'),
  ]);
  const warnings: string[] = [];
  for (const m of pinRead.malformed)
    warnings.push(`pin ${m.key} is malformed, skipped: ${m.problem}`);
  for (const m of leaseRead.malformed) {
    warnings.push(`lease ${m.key} is malformed, skipped: ${m.problem}`);
  }
  const leases: CoordObject[] = [];
  const expiredLeases: CoordObject[] = [];
  for (const l of leaseRead.objects) {
    (isExpired(l, serverNowAtLeast) ? expiredLeases : leases).push(l);
  }
  leases.sort((a, b) => (a.key < b.key ? -1 : 1));
  return {
    pins: pinRead.pins,
    leases,
    expiredLeases,
    pinnedHashParts: new Set(pinRead.pins.map((p) => p.hashPart)),
    leasedHashParts: new Set(leases.flatMap((l) => l.narInfos)),
    leasedNars: new Set(leases.flatMap((l) => l.nars)),
    warnings,
  };
}
