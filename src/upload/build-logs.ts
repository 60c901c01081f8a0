/**
 * Build logs (`upload_build_logs`): after a push, the log of each derivation whose output
 * it uploaded goes to `log/<drv basename>`, where Nix's binary cache stores look for it
 * (`nix log --store <cache> PATH`, or `nix log PATH` with the cache as a substituter).
 *
 * Nix 2.8 keeps build logs in `<log dir>/drvs/<first 2 chars>/<rest of the drv basename>`,
 * bzip2-compressed (`.bz2`, with `compress-build-log`, the default) or plain. A compressed
 * log is stored as it is with `Content-Encoding: bzip2`, which is what Nix itself writes
 * for `log-compression = bzip2`, and which its HTTP and S3 stores decompress when reading;
 * a plain one is stored plain. A log that is not there (substituted paths, logs collected,
 * `keep-build-log = false`) is skipped without a word above debug level.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describeError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { mapLimit } from '../util/limit.js';
import type { LocalStore } from '../store/local-store.js';
import type { BlobStore } from '../storage/port.js';

export const DEFAULT_LOG_DIR = '/nix/var/log/nix';
export const LOG_PREFIX = 'log/';
const LOG_CONTENT_TYPE = 'text/plain; charset=utf-8';
const CONCURRENCY = 8;

/**
 * Nix's log directory for a store on disk at `realStoreDir`: `<root>/nix/store` keeps its
 * logs in `<root>/nix/var/log/nix` (a chroot store); otherwise the system's.
 */
export function logDirFor(realStoreDir: string | undefined): string {
  return realStoreDir === undefined
    ? DEFAULT_LOG_DIR
    : join(dirname(realStoreDir), 'var', 'log', 'nix');
}

/** Where Nix keeps the log of a derivation (basename `<hash>-<name>.drv`). */
export function logFileOf(logDir: string, drvBasename: string): string {
  return join(logDir, 'drvs', drvBasename.slice(0, 2), drvBasename.slice(2));
}

export interface BuildLogResult {
  uploaded: number;
  /** Derivations with no log in the log directory. */
  missing: number;
  failed: number;
}

/** The file's bytes, or undefined when it does not exist. */
async function readIfThere(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

export async function uploadBuildLogs(
  store: Pick<LocalStore, 'queryPathInfo'>,
  blobs: Pick<BlobStore, 'put'>,
  uploaded: readonly { path: string }[],
  opts: { logger: Logger; logDir: string },
): Promise<BuildLogResult> {
  const result: BuildLogResult = { uploaded: 0, missing: 0, failed: 0 };
  if (uploaded.length === 0) return result;
  const infos = await mapLimit(uploaded, CONCURRENCY, (u) => store.queryPathInfo(u.path));
  // One log per derivation, however many of its outputs were uploaded.
  const drvs = [
    ...new Set(infos.flatMap((i) => (i?.deriver === undefined ? [] : [i.deriver]))),
  ].map((d) => d.slice(d.lastIndexOf('/') + 1));
  await mapLimit(drvs, CONCURRENCY, async (drv) => {
    const file = logFileOf(opts.logDir, drv);
    try {
      const bz2 = await readIfThere(`${file}.bz2`);
      const body = bz2 ?? (await readIfThere(file));
      if (body === undefined) {
        result.missing++;
        opts.logger.debug(`no build log for ${drv} in ${opts.logDir}`);
        return;
      }
      await blobs.put(`${LOG_PREFIX}${drv}`, body, {
        contentType: LOG_CONTENT_TYPE,
        ...(bz2 === undefined ? {} : { contentEncoding: 'bzip2' }),
      });
      result.uploaded++;
      opts.logger.debug(`uploaded the build log of ${drv}`, { event: 'build-log', drv });
    } catch (e) {
      // A log is a courtesy: its failure never fails the paths, but it is said.
      result.failed++;
      opts.logger.warn(`could not upload the build log of ${drv}: ${describeError(e)}`);
    }
  });
  if (result.uploaded > 0) {
    opts.logger.info(`uploaded ${result.uploaded} build logs`, {
      event: 'build-logs',
      uploaded: result.uploaded,
      missing: result.missing,
    });
  }
  return result;
}
