/**
 * The `loft` command: parse flags, load loft.toml, open the store and the cache, run the
 * requested actions (or the service), and exit with a code that says how it went.
 */
import { describeError, LoftError } from '../util/errors.js';
import { formatIssue, loadConfig, type LoftConfig } from '../config/index.js';
import { openContext, type AppContext } from '../service/context.js';
import { parseCliArgs, type OnceAction, type ParsedArgs } from './args.js';
import { EXIT, exitCodeFor, type ExitCode } from './exit-codes.js';
import { helpText } from './help.js';
import { createLogger, secretsFromEnv, type CliLogger } from './logger.js';
import { loftVersion } from './version.js';
import { runUpload } from './commands/upload.js';

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

async function runAction(
  ctx: AppContext,
  action: OnceAction,
  signals: { drain: AbortSignal; signal: AbortSignal },
): Promise<ExitCode> {
  switch (action.kind) {
    case 'upload':
      return runUpload(ctx, action, {
        readStdin: async () => {
          const chunks: Buffer[] = [];
          for await (const c of process.stdin) chunks.push(c as Buffer);
          return Buffer.concat(chunks).toString('utf8');
        },
        out: process.stdout,
        terminal:
          process.stderr.isTTY && ctx.config.logFormat === 'text' ? process.stderr : undefined,
        ...signals,
      });
    default:
      throw new LoftError(
        'NOT_AVAILABLE',
        'usage',
        `--${action.kind} is not available in this build yet`,
      );
  }
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
  const signals = signalControllers(logger);
  let ctx: AppContext | undefined;
  try {
    if (parsed.mode.kind !== 'once') {
      throw new LoftError(
        'NOT_AVAILABLE',
        'usage',
        `${parsed.mode.kind} mode is not available in this build yet`,
      );
    }
    ctx = await openContext(config, logger, { env });
    let code: ExitCode = EXIT.ok;
    for (const action of parsed.mode.actions) {
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
