/**
 * The `loft` command: parse flags, load loft.toml, open the store and the cache, run the
 * requested actions (or the service), and exit with a code that says how it went.
 */
import { describeError, LoftError } from '../util/errors.js';
import { formatIssue, loadConfig, type LoftConfig } from '../config/index.js';
import type { AppContext, CacheContext, IndexContext } from '../service/context.js';
import { parseCliArgs, type OnceAction, type ParsedArgs } from './args.js';
import { EXIT, exitCodeFor, type ExitCode } from './exit-codes.js';
import { helpText } from './help.js';
import { createLogger, secretsFromEnv, type CliLogger } from './logger.js';
import { loftVersion } from './version.js';
// Everything that loads the AWS SDK, SQLite or zstd is imported on demand, so the
// post-build hook (which Nix waits for after every build) starts in Node's own time.

/** Signals: the first asks work to stop starting new things; the second aborts. */
function signalControllers(logger: CliLogger) {
  const drain = new AbortController();
  const abort = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (!drain.signal.aborted) {
      logger.warn(`${sig}: finishing uploads in flight; send it again to abort them`);
      drain.abort(new LoftError('INTERRUPTED', 'aborted', `interrupted by ${sig}`));
    } else if (!abort.signal.aborted) {
      logger.warn(`${sig}: aborting`);
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

type Context = AppContext | CacheContext | IndexContext;

async function runAction(
  ctx: Context,
  action: OnceAction,
  signals: { drain: AbortSignal; signal: AbortSignal },
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
  if (!('store' in ctx)) throw new LoftError('CLI_NO_CONTEXT', 'internal', 'opened too little');
  return ctx;
}

function withBucket(ctx: Context): CacheContext | AppContext {
  if (!('blobs' in ctx)) throw new LoftError('CLI_NO_CONTEXT', 'internal', 'opened too little');
  return ctx;
}

function describeCache(ctx: Context): string {
  return 'blobs' in ctx ? ctx.blobs.description : ctx.cacheDescription;
}

async function run(parsed: Extract<ParsedArgs, { kind: 'run' }>): Promise<ExitCode> {
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
    early.error(describeError(e));
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
      logger.error(describeError(e));
      if (!(e instanceof LoftError) && e instanceof Error && e.stack) logger.debug(e.stack);
      return exitCodeFor(e);
    }
  }
  const signals = signalControllers(logger);
  let ctx: Context | undefined;
  try {
    const { openContext, openCacheContext, openIndexOnly } = await import('../service/context.js');
    if (mode.kind === 'service') {
      const app = await openContext(config, logger, { env });
      ctx = app;
      const { runServiceCommand } = await import('./commands/service.js');
      return await runServiceCommand(app, { forceScan: mode.forceScan, ...signals });
    }
    // Open only what the actions need: --status-like ones must work with S3 or the daemon down.
    const needs = (set: Set<OnceAction['kind']>) => mode.actions.every((a) => set.has(a.kind));
    ctx = needs(INDEX_ONLY)
      ? await openIndexOnly(config, logger)
      : needs(CACHE_ONLY)
        ? await openCacheContext(config, logger)
        : await openContext(config, logger, { env });
    let code: ExitCode = EXIT.ok;
    for (const action of mode.actions) {
      if (signals.drain.aborted) return EXIT.interrupted;
      const c = await runAction(ctx, action, signals);
      if (c !== EXIT.ok) code = c;
    }
    if (signals.drain.aborted && code === EXIT.ok) return EXIT.interrupted;
    return code;
  } catch (e) {
    logger.error(describeError(e));
    if (!(e instanceof LoftError) && e instanceof Error && e.stack) logger.debug(e.stack);
    return exitCodeFor(e);
  } finally {
    await ctx?.close();
    signals.dispose();
  }
}

async function main(argv: string[]): Promise<ExitCode> {
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
      process.stdout.write(`loft ${loftVersion()}\n`);
      return EXIT.ok;
    case 'run':
      return run(parsed);
  }
}

process.exitCode = await main(process.argv.slice(2));
