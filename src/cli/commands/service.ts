/**
 * `loft` with no action flag: run the service until SIGTERM/SIGINT. A drained stop (first
 * signal: in-flight uploads finished) exits 0, as systemd expects of a clean stop; an
 * aborted one (second signal) exits 130. With `metrics_listen`, /metrics is served for as
 * long as the service runs.
 */
import type { AppContext } from '../../service/context.js';
import { runService } from '../../service/service.js';
import { pruneRunner } from '../../service/prune-runner.js';
import type { PruneRunner } from '../../service/prune-schedule.js';
import type { LoftMetrics } from '../../metrics/loft-metrics.js';
import { EXIT, type ExitCode } from '../exit-codes.js';

export async function runServiceCommand(
  ctx: AppContext,
  opts: {
    forceScan: boolean;
    drain: AbortSignal;
    signal: AbortSignal;
    /** Made before the context was opened, so it also counts the S3 requests of start-up. */
    metrics?: LoftMetrics;
  },
): Promise<ExitCode> {
  const metrics = opts.metrics;
  let server: { url: string; close(): Promise<void> } | undefined;
  if (metrics && ctx.config.metricsListen) {
    const { startMetricsServer } = await import('../../metrics/server.js');
    server = await startMetricsServer(ctx.config.metricsListen, metrics.registry);
    ctx.logger.info(`serving metrics on ${server.url}`, { event: 'metrics', url: server.url });
  }
  try {
    const runner = ctx.config.prune.enabled ? pruneRunner(ctx) : undefined;
    const outcome = await runService(ctx, {
      forceScan: opts.forceScan,
      drain: opts.drain,
      signal: opts.signal,
      pruneRunner: runner && metrics ? observed(runner, metrics) : runner,
      onPushEvent: metrics ? (ev) => metrics.onPushEvent(ev) : undefined,
    });
    return outcome.aborted ? EXIT.interrupted : EXIT.ok;
  } finally {
    await server?.close();
  }
}

function observed(runner: PruneRunner, metrics: LoftMetrics): PruneRunner {
  return async (signal) => {
    const r = await runner(signal);
    metrics.onPrune(new Date(), r.freedBytes);
    return r;
  };
}
