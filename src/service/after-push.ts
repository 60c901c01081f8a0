/**
 * What runs after a push has published its paths, by configuration: build logs
 * (`upload_build_logs`). The CLI's `--upload-path`, `--watch-exec` and the service's worker
 * call it with each push's result; it never throws (what fails is logged).
 */
import { describeError } from '../util/errors.js';
import { logDirFor, uploadBuildLogs } from '../upload/build-logs.js';
import type { PushResult } from '../upload/push.js';
import type { AppContext } from './context.js';

export type AfterPush = (result: Pick<PushResult, 'uploaded'>) => Promise<void>;

export function afterPushOf(
  app: Pick<AppContext, 'config' | 'store' | 'blobs' | 'logger'>,
): AfterPush | undefined {
  if (!app.config.uploadBuildLogs) return undefined;
  const logDir = logDirFor(app.config.realStoreDir);
  return async (result) => {
    try {
      await uploadBuildLogs(app.store, app.blobs, result.uploaded, {
        logger: app.logger,
        logDir,
      });
    } catch (e) {
      app.logger.warn(`build logs: ${describeError(e)}`);
    }
  };
}
