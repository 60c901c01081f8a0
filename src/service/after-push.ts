/**
 * What runs after a push has published its paths: build logs (`upload_build_logs`) and the
 * realisations of content-addressed derivations (always; see src/upload/realisations.ts).
 * The CLI's `--upload-path`, `--watch-exec` and the service's worker call it with each
 * push's result and its roots; it never throws (what fails is logged).
 */
import { describeError } from '../util/errors.js';
import { logDirFor, uploadBuildLogs } from '../upload/build-logs.js';
import type { PushResult } from '../upload/push.js';
import { RealisationUploader } from '../upload/realisations.js';
import type { AppContext } from './context.js';

export type AfterPush = (
  result: Pick<PushResult, 'uploaded'>,
  roots: readonly string[],
) => Promise<void>;

export function afterPushOf(
  app: Pick<AppContext, 'config' | 'store' | 'blobs' | 'logger' | 'signingKey'>,
): AfterPush {
  const logDir = app.config.uploadBuildLogs ? logDirFor(app.config.realStoreDir) : undefined;
  const realisations = new RealisationUploader({
    store: app.store,
    blobs: app.blobs,
    signingKey: app.signingKey,
    storeDirOnDisk: app.config.realStoreDir ?? app.store.storeDir,
    logger: app.logger,
  });
  return async (result, roots) => {
    if (logDir !== undefined) {
      try {
        await uploadBuildLogs(app.store, app.blobs, result.uploaded, {
          logger: app.logger,
          logDir,
        });
      } catch (e) {
        app.logger.warn(`build logs: ${describeError(e)}`);
      }
    }
    try {
      // The roots too: a root found cached may still lack its realisation (another
      // derivation gave the same output, or an older Loft pushed it).
      await realisations.upload([...new Set([...result.uploaded.map((u) => u.path), ...roots])]);
    } catch (e) {
      app.logger.warn(`realisations: ${describeError(e)}`);
    }
  };
}
