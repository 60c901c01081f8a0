import { LoftError } from '../util/errors.js';

const whatItHolds =
  'it holds only what Loft can learn again (which paths the cache has: --populate-cache ' +
  'or the next push re-checks the bucket) and queued work that the next scan finds again';

/** The index file or its directory cannot be created, opened or written. */
export class IndexUnwritableError extends LoftError {
  constructor(
    readonly path: string,
    detail: string,
    cause?: unknown,
  ) {
    super('INDEX_UNWRITABLE', 'environment', `cannot open the local index ${path}: ${detail}`, {
      hint:
        'make that directory writable by the user Loft runs as, or set local_cache_path ' +
        'to a writable location',
      cause,
    });
  }
}

/** The file exists but is not a usable SQLite database. */
export class IndexCorruptError extends LoftError {
  constructor(
    readonly path: string,
    detail: string,
    cause?: unknown,
  ) {
    super(
      'INDEX_CORRUPT',
      'environment',
      `the local index ${path} is not a usable database: ${detail}`,
      {
        hint: `delete ${path} (and any ${path}-wal and ${path}-shm beside it) and run Loft again; ${whatItHolds}`,
        cause,
      },
    );
  }
}

/** The database was written by a newer Loft whose schema this version does not know. */
export class IndexTooNewError extends LoftError {
  constructor(
    readonly path: string,
    readonly found: number,
    readonly known: number,
  ) {
    super(
      'INDEX_TOO_NEW',
      'environment',
      `the local index ${path} has schema version ${found}, but this Loft knows only up to ${known}`,
      {
        hint: `a newer Loft wrote it: upgrade Loft, or point local_cache_path at another file (${whatItHolds})`,
      },
    );
  }
}

/** Another process held the index locked for longer than the busy timeout. */
export class IndexBusyError extends LoftError {
  constructor(
    readonly path: string,
    cause?: unknown,
  ) {
    super('INDEX_BUSY', 'environment', `the local index ${path} stayed locked by another process`, {
      hint:
        'another Loft process (the service, a push or the post-build hook) is writing to it; ' +
        'try again, and check no Loft process is stuck',
      cause,
    });
  }
}

/** The index was used after close(). */
export class IndexClosedError extends LoftError {
  constructor(readonly path: string) {
    super('INDEX_CLOSED', 'internal', `the local index ${path} was used after it was closed`);
  }
}

/** A value passed to the index is malformed (a bug in the caller, not user input). */
export class IndexArgumentError extends LoftError {
  constructor(message: string) {
    super('INDEX_ARGUMENT', 'internal', message);
  }
}
