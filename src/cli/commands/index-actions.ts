/**
 * The one-shot actions on the local index: `--clear-cache`, `--reset-initial-scan`,
 * `--populate-cache`. Each prints one line saying what it did.
 */
import type { LocalIndex } from '../../index/local-index.js';
import type { BlobStore } from '../../storage/port.js';
import { populateIndex } from '../../service/populate.js';
import { STATE } from '../../service/state-keys.js';
import { EXIT, type ExitCode } from '../exit-codes.js';
import { formatDuration } from '../../util/format.js';

type Out = { write(s: string): unknown };

/**
 * Forget every path the index records as present in this cache. The bucket, the queue and
 * the initial-scan flag are untouched; the next pushes ask the bucket again.
 */
export function clearCache(index: LocalIndex, cache: string, out: Out): ExitCode {
  const n = index.clearPresent();
  out.write(`cleared the local cache: forgot ${n} paths known to be in ${cache}\n`);
  return EXIT.ok;
}

/** Clear the initial scan's done flag: the next service start scans again (if enabled). */
export function resetInitialScan(index: LocalIndex, scanOnStartup: boolean, out: Out): ExitCode {
  const was = index.getState(STATE.initialScanDone);
  index.deleteState(STATE.initialScanDone);
  index.deleteState(STATE.initialScanQueued);
  const next = scanOnStartup
    ? 'the next service start scans the store again'
    : 'scan_on_startup is off, so the service will scan again only once it is turned on (or with --force-scan)';
  out.write(
    was === undefined
      ? `the initial scan was not marked done; ${next}\n`
      : `reset the initial scan (it completed ${was}); ${next}\n`,
  );
  return EXIT.ok;
}

/** List the bucket's narinfos and record each as present, with its LastModified. */
export async function populateCache(
  blobs: BlobStore,
  index: LocalIndex,
  out: Out,
  signal?: AbortSignal,
): Promise<ExitCode> {
  const r = await populateIndex(blobs, index, { signal });
  out.write(
    `populated the local cache: ${r.narInfos} narinfos listed in ${blobs.description}, in ${formatDuration(r.ms)}\n`,
  );
  return EXIT.ok;
}
