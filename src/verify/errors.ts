import { LoftError } from '../util/errors.js';

/** The cache backend cannot stream objects, so NARs cannot be read back. */
export class VerifyNoStreamError extends LoftError {
  constructor(description: string) {
    super('VERIFY_NO_STREAM', 'internal', `${description} cannot stream objects for --deep`);
  }
}

/** Nothing to check signatures against. */
export class VerifyNoKeysError extends LoftError {
  constructor() {
    super('VERIFY_NO_KEYS', 'config', '--verify has no public key to check signatures against', {
      hint: 'set signing_key_path (its public half is trusted) or trusted_public_keys in [loft]',
    });
  }
}
