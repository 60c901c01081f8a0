import { LoftError } from '../util/errors.js';

/** The store directory to watch is missing or not a directory. */
export class StoreDirMissingError extends LoftError {
  constructor(
    readonly dir: string,
    detail: string,
  ) {
    super('SERVICE_STORE_DIR', 'config', `cannot watch the store directory ${dir}: ${detail}`, {
      hint:
        'the service watches the store directory on disk for new paths; for a chroot store ' +
        '(nix-daemon --store <root>) set loft.real_store_dir = "<root>/nix/store"',
    });
  }
}
