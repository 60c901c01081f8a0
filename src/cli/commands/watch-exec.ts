/**
 * `--watch-exec -- COMMAND [ARGS...]`: run COMMAND (stdin, stdout and stderr inherited),
 * upload every store path that becomes valid while it runs, and exit with COMMAND's exit
 * code when it failed, else 0 when every new path reached the cache, else 1.
 *
 * Signals Loft receives are passed on to COMMAND; Loft's own handling (the first signal
 * stops new uploads, the second aborts those in flight) applies as for `--upload-path`.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { LoftError } from '../../util/errors.js';
import { formatDuration } from '../../util/format.js';
import { pushContextOf, pushOptionsOf, type AppContext } from '../../service/context.js';
import { WatchExecIntake } from '../../service/watch-exec.js';
import { afterPushOf } from '../../service/after-push.js';
import { EXIT } from '../exit-codes.js';
import { PushRecord, pushEventLogger, summaryText } from '../push-render.js';

export interface WatchExecAction {
  command: string[];
}

export interface WatchExecIo {
  out: { write(s: string): unknown };
  drain: AbortSignal;
  signal: AbortSignal;
}

/** Forwarded to COMMAND (SIGINT and SIGTERM also drain Loft, see main.ts). */
const FORWARDED: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

interface CommandOutcome {
  /** The exit code COMMAND's exit amounts to (128 + n for a signal, as shells report it). */
  code: number;
  text: string;
}

/** Run COMMAND to its end; rejects only when it cannot be started at all. */
function runCommand(argv: string[], onSpawn: (forward: (s: NodeJS.Signals) => void) => void) {
  return new Promise<CommandOutcome>((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'inherit' });
    child.once('error', (e: NodeJS.ErrnoException) => {
      reject(
        new LoftError(
          'WATCH_EXEC_SPAWN',
          'usage',
          `cannot run ${JSON.stringify(argv[0])}: ${e.code === 'ENOENT' ? 'command not found' : e.message}`,
          { hint: 'give the command after --, e.g. loft --watch-exec -- nix build .#default' },
        ),
      );
    });
    child.once('spawn', () =>
      onSpawn((s) => {
        if (child.exitCode === null && child.signalCode === null) child.kill(s);
      }),
    );
    child.once('exit', (code, sig) => {
      if (sig !== null) {
        resolve({ code: 128 + (constants.signals[sig] ?? 0), text: `was killed by ${sig}` });
      } else {
        resolve({ code: code ?? 0, text: `exited with code ${code}` });
      }
    });
  });
}

export async function runWatchExec(
  ctx: AppContext,
  action: WatchExecAction,
  io: WatchExecIo,
): Promise<number> {
  const { logger, config } = ctx;
  const record = new PushRecord();
  const intake = new WatchExecIntake(
    {
      store: ctx.store,
      pushContext: pushContextOf(ctx),
      pushOptions: {
        ...pushOptionsOf(config),
        onEvent: pushEventLogger(logger, { dryRun: false, record, format: config.logFormat }),
      },
      storeDirOnDisk: config.realStoreDir ?? ctx.store.storeDir,
      logger,
      afterPush: afterPushOf(ctx),
    },
    { drain: io.drain, signal: io.signal },
  );
  await intake.start();
  if (io.drain.aborted) {
    // Interrupted while getting ready: the command never ran.
    intake.close();
    return EXIT.interrupted;
  }
  const t0 = Date.now();
  let forward: ((s: NodeJS.Signals) => void) | undefined;
  const onSignal = (s: NodeJS.Signals) => forward?.(s);
  for (const s of FORWARDED) process.on(s, onSignal);
  let outcome: CommandOutcome;
  try {
    logger.info(`running ${action.command.join(' ')}; uploading the store paths it adds`, {
      event: 'watch-exec-start',
    });
    outcome = await runCommand(action.command, (f) => (forward = f));
  } catch (e) {
    intake.close();
    throw e;
  } finally {
    for (const s of FORWARDED) process.off(s, onSignal);
  }
  logger.info(
    `${action.command[0]} ${outcome.text} after ${formatDuration(Date.now() - t0)}; finishing uploads`,
    { event: 'watch-exec-exited', code: outcome.code },
  );
  let run;
  try {
    run = await intake.finish();
  } catch (e) {
    // Aborted by a second signal: COMMAND's failure still says more than our interruption.
    if (outcome.code !== 0 && io.signal.aborted) return outcome.code;
    throw e;
  }
  io.out.write(
    `watch-exec: ${run.newPaths} new store paths (${run.watched} seen while the command ran); ${summaryText(run.result, { interrupted: io.drain.aborted && !run.result.complete }, record)}`,
  );
  if (outcome.code !== 0) return outcome.code;
  if (io.drain.aborted) return EXIT.interrupted;
  return run.result.complete ? EXIT.ok : EXIT.failed;
}
