/**
 * Process exit codes. The table lives with the failure policy (src/util/failure-policy.ts),
 * which maps every error code to its meaning and exit code; this module keeps the CLI's
 * import path and the text --help prints.
 */
import { EXIT, type ExitCode } from '../util/failure-policy.js';

export { EXIT, exitCodeFor, exitCodeForKind, type ExitCode } from '../util/failure-policy.js';

/** For --help and the README. */
export const EXIT_CODE_DOCS: readonly { code: ExitCode; meaning: string }[] = [
  { code: EXIT.ok, meaning: 'success' },
  { code: EXIT.failed, meaning: 'some work failed (e.g. paths not uploaded, prune incomplete)' },
  { code: EXIT.usage, meaning: 'usage error (bad flags or flag combination)' },
  {
    code: EXIT.config,
    meaning: 'configuration error (loft.toml, signing key, LOFT_EXTRA_HEADER_*)',
  },
  {
    code: EXIT.environment,
    meaning: 'environment error (nix-daemon or S3 unreachable or refusing)',
  },
  { code: EXIT.internal, meaning: 'internal error (a bug in Loft)' },
  { code: EXIT.interrupted, meaning: 'interrupted by a signal before the work finished' },
];

/**
 * The one-shot actions in order, by the exit-code table: each action's own code says how
 * it went (0 complete, 130 interrupted before its work finished, else a failure); the
 * first action that is not complete ends the run, so `--upload-path BAD --prune` never
 * prunes, and an action never starts after the first signal.
 */
export async function runActions<A>(
  actions: readonly A[],
  drain: AbortSignal,
  run: (action: A) => Promise<ExitCode>,
): Promise<ExitCode> {
  for (const action of actions) {
    if (drain.aborted) return EXIT.interrupted;
    const code = await run(action);
    if (code !== EXIT.ok) return code;
  }
  return EXIT.ok;
}
