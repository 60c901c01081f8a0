/** Errors of pruning. A prune that stops half-way leaves a closure-complete cache. */
import { LoftError, describeError, type ErrorKind } from '../util/errors.js';

/** A policy value that cannot work (a bug in the caller or a hand-built policy). */
export class PrunePolicyError extends LoftError {
  constructor(field: string, value: unknown, expected: string) {
    super('PRUNE_BAD_POLICY', 'config', `prune policy ${field} is ${String(value)}: ${expected}`, {
      hint: 'check the prune_* settings in loft.toml',
    });
  }
}

/** What had been deleted when a prune stopped. */
export interface PruneProgressSoFar {
  narInfos: number;
  nars: number;
}

/**
 * The prune stopped on an error (S3 refused a request, a narinfo could not be read). The
 * cache is closure-complete: narinfos are deleted referrers first, NARs only after every
 * narinfo using them is gone. The next prune finishes the job.
 */
export class PruneIncompleteError extends LoftError {
  constructor(
    readonly done: PruneProgressSoFar,
    stage: string,
    cause: unknown,
  ) {
    const kind: ErrorKind = cause instanceof LoftError ? cause.kind : 'internal';
    super(
      'PRUNE_INCOMPLETE',
      kind,
      `prune stopped while ${stage}, after deleting ${done.narInfos} narinfos and ${done.nars} NARs: ` +
        describeError(cause).replace(/\n\s*hint: .*$/s, ''),
      {
        hint:
          (cause instanceof LoftError && cause.hint ? `${cause.hint}; then ` : '') +
          'run the prune again: it completes what was started (the cache stays closure-complete at every step)',
        cause,
      },
    );
  }
}
