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
