/**
 * Every error Loft raises on purpose is a LoftError with a stable `code`, so callers and
 * tests branch on codes, not message text, and the CLI maps each kind to an exit code.
 * Messages say what happened, with the value involved (never a secret), and `hint` says
 * what to do about it.
 */
import type { ErrorCode } from './error-codes.js';

export type { ErrorCode } from './error-codes.js';

export type ErrorKind =
  /** Bad command-line usage. */
  | 'usage'
  /** Bad configuration: config file, key file, environment. */
  | 'config'
  /** The environment is not usable: daemon unreachable, S3 refused us, tool missing. */
  | 'environment'
  /** Work failed: a path could not be uploaded, a store path is corrupt. */
  | 'work'
  /** Malformed data from a peer or a file (protocol or format violation). */
  | 'format'
  /** The operation was cancelled by a signal or an abort. */
  | 'aborted'
  /** A bug: an invariant of our own did not hold. */
  | 'internal';

export interface LoftErrorOptions {
  hint?: string;
  cause?: unknown;
}

export class LoftError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, kind: ErrorKind, message: string, options: LoftErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.kind = kind;
    this.hint = options.hint;
  }
}

export function isLoftError(e: unknown, code?: ErrorCode): e is LoftError {
  return e instanceof LoftError && (code === undefined || e.code === code);
}

/** A message for people: the error's text and, when there is one, what to do. */
export function describeError(e: unknown): string {
  if (e instanceof LoftError) return e.hint ? `${e.message}\n  hint: ${e.hint}` : e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}
