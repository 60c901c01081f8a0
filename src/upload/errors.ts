import { LoftError } from '../util/errors.js';

/** The bucket already holds a cache for another store directory. */
export class CacheStoreDirMismatchError extends LoftError {
  constructor(description: string, theirs: string, ours: string) {
    super(
      'CACHE_STORE_DIR_MISMATCH',
      'config',
      `${description} is a cache for store directory ${theirs}, but this machine's store is ${ours}`,
      {
        hint: 'point Loft at another bucket (or prefix) for this store; Nix cannot substitute across store directories',
      },
    );
  }
}

/** The bucket's nix-cache-info is not a cache-info file at all. */
export class CacheInfoInvalidError extends LoftError {
  constructor(description: string, why: string) {
    super(
      'CACHE_INFO_INVALID',
      'environment',
      `nix-cache-info in ${description} is invalid: ${why}`,
      {
        hint: 'check what else writes to this bucket; delete the object to let Loft write a fresh one',
      },
    );
  }
}
