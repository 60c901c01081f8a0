/**
 * Process exit codes, one per kind of outcome, so scripts and systemd can tell "fix your
 * command line" from "fix loft.toml" from "S3 or the daemon is down" from "some paths were
 * not uploaded". Mapped from LoftError.kind (src/util/errors.ts).
 */
import type { ErrorKind } from '../util/errors.js';
import { LoftError } from '../util/errors.js';

export const EXIT = {
  /** Everything asked for was done. */
  ok: 0,
  /** The work ran but part of it failed (e.g. some paths were not uploaded). */
  failed: 1,
  /** Bad command line (unknown flag, bad value, flags that do not combine). */
  usage: 2,
  /** Bad configuration: loft.toml, the signing key file, LOFT_EXTRA_HEADER_* variables. */
  config: 3,
  /** The environment refused: nix-daemon or S3 unreachable or denying access, bad data from them. */
  environment: 4,
  /** A bug in Loft (an invariant did not hold, or an unexpected exception). */
  internal: 70,
  /** Interrupted by SIGINT/SIGTERM before the work finished (128 + SIGINT). */
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

const BY_KIND: Record<ErrorKind, ExitCode> = {
  usage: EXIT.usage,
  config: EXIT.config,
  environment: EXIT.environment,
  // Malformed data from the daemon or the bucket: something outside Loft is wrong.
  format: EXIT.environment,
  work: EXIT.failed,
  aborted: EXIT.interrupted,
  internal: EXIT.internal,
};

export function exitCodeForKind(kind: ErrorKind): ExitCode {
  return BY_KIND[kind];
}

/** The exit code for an error that ended the run; anything not a LoftError is a bug. */
export function exitCodeFor(error: unknown): ExitCode {
  if (error instanceof LoftError) return exitCodeForKind(error.kind);
  if (error instanceof Error && error.name === 'AbortError') return EXIT.interrupted;
  return EXIT.internal;
}

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
