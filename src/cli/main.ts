/**
 * The `loft` command: parse flags, load loft.toml, open the store and the cache, run the
 * requested actions (or the service), and exit with a code that says how it went.
 */
import { describeError, LoftError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { formatIssue, loadConfig, type LoftConfig } from '../config/index.js';
import type { AppContext, CacheContext, IndexContext } from '../service/context.js';
import { parseCliArgs, type OnceAction, type ParsedArgs } from './args.js';
import { EXIT, exitCodeFor, runActions, type ExitCode } from './exit-codes.js';
import { helpText } from './help.js';
import { errorCode } from './log-schema.js';
import { createLogger, secretsFromEnv, type CliLogger } from './logger.js';
import { versionLine } from './version.js';
// Everything that loads the AWS SDK, SQLite or zstd is imported on demand, so the
// post-build hook (which Nix waits for after every build) starts in Node's own time.

/** Signals: the first asks work to stop starting new things; the second aborts. */
function signalControllers(logger: CliLogger) {
  const drain = new AbortController();
  const abort = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (!drain.signal.aborted) {
      logger.warn(`${sig}: finishing uploads in flight; send it again to abort them`, {
        event: 'interrupt',
        signal: sig,
        stage: 'drain',
      });
      drain.abort(new LoftError('INTERRUPTED', 'aborted', `interrupted by ${sig}`));
    } else if (!abort.signal.aborted) {
      logger.warn(`${sig}: aborting`, { event: 'interrupt', signal: sig, stage: 'abort' });
      abort.abort(new LoftError('INTERRUPTED', 'aborted', `aborted by ${sig}`));
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    drain: drain.signal,
    signal: abort.signal,
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** The fields of a run-ending error line: scripts read `event` and `error.code`. */
function errorFields(e: unknown) {
  return { event: 'error', 'error.code': errorCode(e) };
}

/** Actions that need only the local index: no S3 requests, no daemon, no signing key. */
const INDEX_ONLY = new Set<OnceAction['kind']>(['clear-cache', 'reset-initial-scan']);
/** Actions that need the bucket and the index, but neither the daemon nor the signing key. */
const CACHE_ONLY = new Set<OnceAction['kind']>([
  ...INDEX_ONLY,
  'populate-cache',
  'prune',
  'pin',
  'unpin',
  'pins',
]);
/** --verify reads only the bucket; --verify --repair also pushes from the local store. */
const cacheOnly = (a: OnceAction) => CACHE_ONLY.has(a.kind) || (a.kind === 'verify' && !a.repair);

type Context = AppContext | CacheContext | IndexContext;

async function runAction(
  ctx: Context,
  action: OnceAction,
  signals: { drain: AbortSignal; signal: AbortSignal },
  logger: CliLogger,
): Promise<ExitCode> {
  const out = process.stdout;
  switch (action.kind) {
    case 'clear-cache': {
      const { clearCache } = await import('./commands/index-actions.js');
      return clearCache(ctx.index, describeCache(ctx), out);
    }
    case 'reset-initial-scan': {
      const { resetInitialScan } = await import('./commands/index-actions.js');
      return resetInitialScan(ctx.index, ctx.config.scanOnStartup, out);
    }
    case 'populate-cache': {
      const { populateCache } = await import('./commands/index-actions.js');
      return populateCache(withBucket(ctx).blobs, ctx.index, out, signals.drain);
    }
    case 'upload': {
      const app = full(ctx);
      const { runUpload } = await import('./commands/upload.js');
      const code = await runUpload(app, action, {
        readStdin: async () => {
          const chunks: Buffer[] = [];
          for await (const c of process.stdin) chunks.push(c as Buffer);
          return Buffer.concat(chunks).toString('utf8');
        },
        out: process.stdout,
        terminal:
          process.stderr.isTTY && app.config.logFormat === 'text' ? process.stderr : undefined,
        redirectLog: (write) => logger.redirect(write),
        ...signals,
      });
      if (!action.dryRun) {
        // Parked service paths this upload put in the cache are done: off the parked list.
        const { UploadQueue } = await import('../index/queue.js');
        const dropped = new UploadQueue(app.index).dropCachedParked();
        if (dropped > 0) {
          app.logger.info(
            `${dropped} parked paths of the service's queue are now cached; removed from it`,
          );
        }
      }
      return code;
    }
    case 'prune': {
      const app = withBucket(ctx);
      const [{ runPrune }, { recordPrune }] = await Promise.all([
        import('./commands/prune.js'),
        import('../service/state-keys.js'),
      ]);
      return runPrune(app, action, {
        out,
        index: app.index,
        drain: signals.drain,
        record: (at, summary) => recordPrune(app.index, at, summary),
      });
    }
    case 'verify': {
      const { runVerify, upstreamSignerOf } = await import('./commands/verify.js');
      const cache = withBucket(ctx);
      const app = action.repair ? full(ctx) : undefined;
      const { pushContextOf, pushOptionsOf } = await import('../service/context.js');
      // The daemon tells references left to upstream caches from missing ones; without it
      // the audit still runs, and says so.
      const store = app?.store ?? (await optionalStore(ctx.config, ctx.logger));
      try {
        return await runVerify(
          {
            blobs: cache.blobs,
            logger: cache.logger,
            config: cache.config,
            storeDir: store?.storeDir,
            upstreamSigner: store && upstreamSignerOf(store, ctx.config.skipSignedByKeys),
            repair: app && {
              ctx: { ...pushContextOf(app), store: app.store },
              options: pushOptionsOf(app.config),
            },
          },
          action,
          {
            out,
            terminal:
              process.stderr.isTTY && ctx.config.logFormat === 'text' ? process.stderr : undefined,
            signal: signals.drain,
          },
        );
      } finally {
        if (store !== app?.store) await store?.close();
      }
    }
    case 'pin':
    case 'unpin':
    case 'pins': {
      const app = withBucket(ctx);
      const pins = await import('./commands/pins.js');
      if (action.kind === 'pin') return pins.runPin(app, action, { out });
      if (action.kind === 'unpin') return pins.runUnpin(app, action, { out });
      return pins.runListPins(app, { out });
    }
  }
}

function full(ctx: Context): AppContext {
  if (ctx.opened !== 'app') throw new LoftError('CLI_NO_CONTEXT', 'internal', 'opened too little');
  return ctx;
}

function withBucket(ctx: Context): CacheContext | AppContext {
  if (ctx.opened === 'index')
    throw new LoftError('CLI_NO_CONTEXT', 'internal', 'opened too little');
  return ctx;
}

function describeCache(ctx: Context): string {
  return ctx.opened === 'index' ? ctx.cacheDescription : ctx.blobs.description;
}

/** An ExitCode, or --watch-exec passing on its command's own failing exit code. */
async function run(parsed: Extract<ParsedArgs, { kind: 'run' }>): Promise<ExitCode | number> {
  const env = process.env;
  const early = createLogger({
    level: parsed.debug ? 'debug' : 'info',
    format: parsed.logFormat ?? 'text',
    env,
    secrets: secretsFromEnv(env),
  });
  let config: LoftConfig;
  try {
    const loaded = await loadConfig({
      path: parsed.configPath,
      explicit: parsed.configExplicit,
      env,
      overrides: { debug: parsed.debug, logFormat: parsed.logFormat },
    });
    config = loaded.config;
    for (const w of loaded.warnings) early.warn(formatIssue(config.source, w));
  } catch (e) {
    early.error(describeError(e), errorFields(e));
    return exitCodeFor(e);
  }
  const logger = createLogger({
    level: config.logLevel,
    format: config.logFormat,
    env,
    secrets: [...secretsFromEnv(env), ...config.s3.extraHeaders.secretValues()],
  });
  const mode = parsed.mode;
  // Quick, signal-free modes first.
  if (mode.kind === 'post-build-hook' || mode.kind === 'status') {
    try {
      if (mode.kind === 'post-build-hook') {
        const { runPostBuildHook } = await import('./commands/hook.js');
        return runPostBuildHook(config, { env, logger });
      }
      const { runStatus } = await import('./commands/status.js');
      return await runStatus(config, mode.format, { out: process.stdout, logger });
    } catch (e) {
      logger.error(describeError(e), errorFields(e));
      if (!(e instanceof LoftError) && e instanceof Error && e.stack) logger.debug(e.stack);
      return exitCodeFor(e);
    }
  }
  const signals = signalControllers(logger);
  let ctx: Context | undefined;
  try {
    const { openContext, openCacheContext, openIndexOnly } = await import('../service/context.js');
    if (mode.kind === 'service') {
      const metrics = config.metricsListen ? await serviceMetrics() : undefined;
      const app = await openContext(config, logger, { env, onS3Request: metrics?.onS3Request });
      ctx = app;
      metrics?.attachQueue(app.index);
      const { runServiceCommand } = await import('./commands/service.js');
      return await runServiceCommand(app, { forceScan: mode.forceScan, ...signals, metrics });
    }
    if (mode.kind === 'watch-exec') {
      const app = await openContext(config, logger, { env });
      ctx = app;
      const { runWatchExec } = await import('./commands/watch-exec.js');
      return await runWatchExec(app, mode, { out: process.stdout, ...signals });
    }
    if (mode.kind === 'doctor') {
      const { runDoctor } = await import('./commands/doctor.js');
      return await runDoctor(config, { out: process.stdout, logger, env });
    }
    // Loaded while the context below waits on the daemon and S3, not after.
    if (mode.actions.some((a) => a.kind === 'upload'))
      void import('./commands/upload.js').catch(() => {});
    // Open only what the actions need: --status-like ones must work with S3 or the daemon down.
    const needs = (set: Set<OnceAction['kind']>) => mode.actions.every((a) => set.has(a.kind));
    ctx = needs(INDEX_ONLY)
      ? await openIndexOnly(config, logger)
      : mode.actions.every(cacheOnly)
        ? await openCacheContext(config, logger)
        : // The bucket check's round trip overlaps resolving the paths and walking the closure.
          await openContext(config, logger, { env, deferBucketCheck: true });
    return await runActions(mode.actions, signals.drain, (a) =>
      runAction(ctx!, a, signals, logger),
    );
  } catch (e) {
    logger.error(describeError(e), errorFields(e));
    if (!(e instanceof LoftError) && e instanceof Error && e.stack) logger.debug(e.stack);
    return exitCodeFor(e);
  } finally {
    await ctx?.close();
    signals.dispose();
  }
}

/** The local store if the daemon answers; a warning otherwise. */
async function optionalStore(config: LoftConfig, logger: Logger) {
  const [{ LocalStore }, { daemonTransportOf }] = await Promise.all([
    import('../store/local-store.js'),
    import('../config/index.js'),
  ]);
  try {
    return await LocalStore.open({
      ...daemonTransportOf(config),
      maxConnections: 2,
      logger,
    });
  } catch (e) {
    logger.warn(
      `cannot reach the nix-daemon (${describeError(e).split('\n')[0]}): references without a ` +
        'narinfo count as damage, even those an upstream cache serves',
    );
    return undefined;
  }
}

/** The service's metrics; the queue gauges are attached once the index is open. */
async function serviceMetrics() {
  const [{ LoftMetrics }, { UploadQueue }] = await Promise.all([
    import('../metrics/loft-metrics.js'),
    import('../index/queue.js'),
  ]);
  const metrics = new LoftMetrics();
  return Object.assign(metrics, {
    attachQueue(index: ConstructorParameters<typeof UploadQueue>[0]) {
      const queue = new UploadQueue(index);
      metrics.addQueueGauges({
        pending: () => queue.counts().pending,
        parked: () => queue.counts().parked,
        oldestPendingAt: () => queue.oldestPendingAt(),
      });
    },
  });
}

async function main(argv: string[]): Promise<ExitCode | number> {
  let parsed: ParsedArgs;
  try {
    parsed = parseCliArgs(argv);
  } catch (e) {
    process.stderr.write(`loft: ${describeError(e)}\n`);
    return exitCodeFor(e);
  }
  switch (parsed.kind) {
    case 'help':
      process.stdout.write(helpText());
      return EXIT.ok;
    case 'version':
      process.stdout.write(`${versionLine()}\n`);
      return EXIT.ok;
    case 'run':
      return run(parsed);
  }
}

process.exitCode = await main(process.argv.slice(2));
