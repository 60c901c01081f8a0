import { LoftError } from '../util/errors.js';

/**
 * A store path could not be read from disk (permissions, a path missing under the real
 * store dir): the caller falls back to the nix-daemon, which can always read the store.
 */
export class PackSourceError extends LoftError {
  constructor(
    readonly path: string,
    readonly errno: string | undefined,
    message: string,
  ) {
    super('PACK_SOURCE_UNREADABLE', 'environment', `cannot read ${path} from disk: ${message}`, {
      hint: 'Loft falls back to reading it through the nix-daemon',
    });
  }
}

/** The packer thread failed in a way that is not about the path's bytes. */
export class PackFailedError extends LoftError {
  constructor(message: string, cause?: unknown) {
    super('PACK_FAILED', 'work', `packing a NAR failed: ${message}`, { cause });
  }
}
