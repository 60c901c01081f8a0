/**
 * `--post-build-hook`: what Nix's `post-build-hook` runs, as root, after every build, while
 * the build waits. It records `$OUT_PATHS` as one file in the inbox next to the local index
 * and returns: no SQLite, no S3, no daemon, no signing key, and none of the modules that
 * load them, so it takes about as long as Node takes to start. The running service
 * uploads the paths (and picks up files left while it was down at its next start).
 *
 * It fails (non-zero, which fails the build in Nix) only when the paths cannot be recorded.
 */
import type { LoftConfig } from '../../config/index.js';
import type { Logger } from '../../util/log.js';
import { hookPathsFromEnv } from '../args.js';
import { EXIT, type ExitCode } from '../exit-codes.js';
import { inboxDirFor, writeInboxFile } from '../../watch/inbox.js';

export function runPostBuildHook(
  config: LoftConfig,
  io: { env: Readonly<Record<string, string | undefined>>; logger: Logger },
): ExitCode {
  const t0 = performance.now();
  const paths = hookPathsFromEnv(io.env);
  if (paths.length === 0) {
    io.logger.debug('post-build hook: $OUT_PATHS is empty; nothing to record');
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
