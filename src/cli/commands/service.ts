/**
 * `loft` with no action flag: run the service until SIGTERM/SIGINT. A drained stop (first
 * signal: in-flight uploads finished) exits 0, as systemd expects of a clean stop; an
 * aborted one (second signal) exits 130.
 */
import type { AppContext } from '../../service/context.js';
import { runService } from '../../service/service.js';
import { pruneRunner } from '../../service/prune-runner.js';
import { EXIT, type ExitCode } from '../exit-codes.js';

export async function runServiceCommand(
  ctx: AppContext,
  opts: { forceScan: boolean; drain: AbortSignal; signal: AbortSignal },
): Promise<ExitCode> {
  const outcome = await runService(ctx, {
    forceScan: opts.forceScan,
    drain: opts.drain,
    signal: opts.signal,
    pruneRunner: ctx.config.prune.enabled ? pruneRunner(ctx) : undefined,
  });
  return outcome.aborted ? EXIT.interrupted : EXIT.ok;
}
