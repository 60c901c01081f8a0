/**
 * `--post-build-hook`: what Nix's `post-build-hook` runs, as root, after every build, while
 * the build waits. It records the built paths as one file in the inbox next to the local
 * index and returns: no SQLite, no S3, no daemon, no signing key, and none of the modules
 * that load them, so it takes about as long as Node takes to start. The running service
 * uploads the paths (and picks up files left while it was down at its next start).
 *
 * The paths come from `$OUT_PATHS`; when Nix passes it empty (Nix 2.8.0's bug, fixed in
 * 2.8.1), from the outputs named in `$DRV_PATH`. It fails (non-zero, which fails the build
 * in Nix) only when the paths cannot be recorded.
 */
import { readFileSync } from 'node:fs';
import type { LoftConfig } from '../../config/index.js';
import type { Logger } from '../../util/log.js';
import { describeError } from '../../util/errors.js';
import { hookPathsFromEnv } from '../args.js';
import { EXIT, type ExitCode } from '../exit-codes.js';
import { inboxDirFor, looksLikeStorePath, writeInboxFile } from '../../watch/inbox.js';
import { derivationOutputs } from '../../watch/drv-outputs.js';

/** The paths a hook run should record. */
export function hookPaths(
  env: Readonly<Record<string, string | undefined>>,
  logger: Logger,
  readDrv: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): string[] {
  const paths = hookPathsFromEnv(env);
  const drv = env.DRV_PATH?.trim();
  if (paths.length > 0 || !drv) return paths;
  try {
    const outs = derivationOutputs(readDrv(drv)).map((o) => o.path);
    logger.debug(`post-build hook: $OUT_PATHS is empty; took ${outs.length} outputs from ${drv}`);
    return outs;
  } catch (e) {
    // The store watcher still finds the outputs; a hook must not fail a build for this.
    logger.warn(
      `post-build hook: $OUT_PATHS is empty and ${drv} could not be read: ${describeError(e)}`,
    );
    return [];
  }
}

export function runPostBuildHook(
  config: LoftConfig,
  io: { env: Readonly<Record<string, string | undefined>>; logger: Logger },
): ExitCode {
  const t0 = performance.now();
  const given = hookPaths(io.env, io.logger);
  // One odd word must not lose the others, nor fail the build: record what is usable.
  const paths = given.filter((p) => looksLikeStorePath(p));
  if (paths.length < given.length) {
    io.logger.warn(
      `post-build hook: ignoring ${given.length - paths.length} entries that are not store paths: ${given
        .filter((p) => !looksLikeStorePath(p))
        .slice(0, 5)
        .map((p) => JSON.stringify(p))
        .join(', ')}`,
    );
  }
  if (paths.length === 0) {
    io.logger.debug('post-build hook: no output paths; nothing to record');
    return EXIT.ok;
  }
  const dir = inboxDirFor(config.localCachePath);
  const file = writeInboxFile(dir, paths);
  io.logger.debug(`post-build hook: recorded ${paths.length} paths in ${file}`, {
    paths: paths.length,
    ms: Math.round(performance.now() - t0),
  });
  return EXIT.ok;
}
