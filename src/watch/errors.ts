import { LoftError } from '../util/errors.js';

/** The store directory (or the inbox) cannot be watched. */
export class WatchError extends LoftError {
  constructor(
    readonly dir: string,
    detail: string,
    cause?: unknown,
  ) {
    super('WATCH_FAILED', 'environment', `cannot watch ${dir}: ${detail}`, {
      hint:
        'the service needs read access to the store directory on disk; for a chroot store set ' +
        'loft.real_store_dir to <root>/nix/store. If the system ran out of inotify watches, raise ' +
        'fs.inotify.max_user_watches',
      cause,
    });
  }
}

/** The post-build hook could not record its paths in the inbox. */
export class InboxWriteError extends LoftError {
  constructor(
    readonly dir: string,
    detail: string,
    cause?: unknown,
  ) {
    super('INBOX_UNWRITABLE', 'environment', `cannot record paths in ${dir}: ${detail}`, {
      hint:
        'the post-build hook writes into inbox/ next to local_cache_path; run it as root (Nix ' +
        'does) or as a user who can write there, and give it the same loft.toml as the service',
      cause,
    });
  }
}

/** A path given to the post-build hook is not a store path. */
export class InboxPathError extends LoftError {
  constructor(readonly path: string) {
    super('INBOX_BAD_PATH', 'usage', `not a store path: ${JSON.stringify(path)}`, {
      hint: 'the post-build hook records the store paths Nix passes in $OUT_PATHS',
    });
  }
}
