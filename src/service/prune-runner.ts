/** The scheduled prune the service runs: closure-aware pruning of its own bucket and index. */
import type { LoftConfig } from '../config/index.js';
import type { LocalIndex } from '../index/local-index.js';
import type { BlobStore } from '../storage/port.js';
import type { Logger } from '../util/log.js';
import { NarInfoCache, policyFromSettings, prune } from '../prune/index.js';
import type { PruneRunner } from './prune-schedule.js';

const mb = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(1)} GB` : `${(n / 1e6).toFixed(1)} MB`);

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
    const d = r.deleted;
    const nars = d.releasedNars.count + d.orphanNars.count;
    const bytes = d.narInfos.bytes + d.releasedNars.bytes + d.orphanNars.bytes;
    return {
      text: `deleted ${d.narInfos.count} narinfos and ${nars} NARs (${mb(bytes)}), aborted ${d.staleUploads} stale uploads`,
      interrupted: r.interrupted,
    };
  };
}
