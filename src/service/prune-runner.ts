/** The scheduled prune the service runs: closure-aware pruning of its own bucket and index. */
import type { LoftConfig } from '../config/index.js';
import type { LocalIndex } from '../index/local-index.js';
import type { BlobStore } from '../storage/port.js';
import type { Logger } from '../util/log.js';
import {
  NarInfoCache,
  policyFromSettings,
  prune,
  pruneSummaryLine,
  type PruneResult,
} from '../prune/index.js';
import type { PruneRunner } from './prune-schedule.js';

export function pruneRunner(deps: {
  config: LoftConfig;
  blobs: BlobStore;
  index: LocalIndex;
  logger: Logger;
}): PruneRunner {
  // Parsed narinfos survive between scheduled runs, so later prunes read only what changed.
  const narInfoCache = new NarInfoCache();
  const policy = policyFromSettings(deps.config.prune);
  return async (signal) => {
    const r = await prune(
      {
        blobs: deps.blobs,
        logger: deps.logger,
        policy,
        forget: (hashParts) => deps.index.forgetPresent(hashParts),
        narInfoCache,
      },
      { signal },
    );
    return {
      text: pruneSummaryLine(r),
      interrupted: r.interrupted,
      freedBytes: freedBytes(r),
    };
  };
}

function freedBytes(r: PruneResult): number {
  const d = r.deleted;
  return [d.narInfos, d.listings, d.orphanListings, d.releasedNars, d.orphanNars].reduce(
    (n, t) => n + t.bytes,
    0,
  );
}
