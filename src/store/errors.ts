/**
 * Errors of the local store layer: the ones a user meets when a path is not what it should
 * be. Each names the path and says what to do.
 */
import { LoftError } from '../util/errors.js';

/** The path is well-formed but not registered valid in the store (never built, or GC'd). */
export class PathNotValidError extends LoftError {
  constructor(readonly path: string) {
    super(
      'PATH_NOT_VALID',
      'work',
      `${path} is not a valid store path (the Nix store has no record of it)`,
      {
        hint: `build or fetch it first (e.g. \`nix-store --realise ${path}\`), or check it with \`nix-store --verify-path ${path}\``,
      },
    );
  }
}

/** A user-given path that does not lead into the store. */
export class PathOutsideStoreError extends LoftError {
  constructor(
    readonly userPath: string,
    readonly resolved: string,
    readonly storeDir: string,
  ) {
    super(
      'PATH_OUTSIDE_STORE',
      'usage',
      resolved === userPath
        ? `${userPath} is not in the Nix store (${storeDir})`
        : `${userPath} resolves to ${resolved}, which is not in the Nix store (${storeDir})`,
      {
        hint: `give a store path (${storeDir}/<hash>-<name>), a path inside one, or a symlink to one such as ./result`,
      },
    );
  }
}

/** A user-given path that does not exist. */
export class PathMissingError extends LoftError {
  constructor(readonly userPath: string) {
    super('PATH_MISSING', 'usage', `${userPath} does not exist`, {
      hint: 'check the path; for a build result, build it first (`nix-build` creates ./result)',
    });
  }
}

export interface NarMismatch {
  expectedHash: string;
  expectedSize: number;
  /** Undefined when the stream was stopped early for being too long. */
  actualHash: string | undefined;
  /** Bytes seen (at least this many when the stream was stopped early). */
  actualSize: number;
  /** What the expectation came from. */
  against: 'registered' | 'caller';
}

/**
 * The NAR bytes of a path do not match what the store registered for it: the path was
 * modified on disk (or the caller's path info is stale). Nothing made from them may be
 * published.
 */
export class NarMismatchError extends LoftError {
  constructor(
    readonly path: string,
    readonly mismatch: NarMismatch,
  ) {
    const m = mismatch;
    const got =
      m.actualHash === undefined
        ? `more than ${m.expectedSize} bytes (stopped at ${m.actualSize})`
        : `${m.actualHash} (${m.actualSize} bytes)`;
    const what =
      m.against === 'registered'
        ? `the Nix database registered ${m.expectedHash} (${m.expectedSize} bytes) but its contents give ${got}`
        : `the caller expected ${m.expectedHash} (${m.expectedSize} bytes) but the store now registers ${got}`;
    super(
      'NAR_MISMATCH',
      'work',
      m.against === 'registered'
        ? `store path ${path} looks corrupt: ${what}`
        : `store path ${path} changed since its path info was read: ${what}`,
      {
        hint:
          m.against === 'registered'
            ? `check it with \`nix-store --verify-path ${path}\`; repair the store with \`nix-store --verify --check-contents --repair\` (as root)`
            : 'the path was probably garbage-collected and rebuilt; run again to pick up its new path info',
      },
    );
  }
}

/** An option given to LocalStore is not acceptable. */
export class StoreOptionError extends LoftError {
  constructor(option: string, value: unknown, expected: string) {
    super(
      'STORE_OPTION_INVALID',
      'config',
      `invalid store option ${option}: ${JSON.stringify(value)}; expected ${expected}`,
    );
  }
}
