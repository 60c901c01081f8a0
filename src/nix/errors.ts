/**
 * Errors raised by the pure Nix format modules. Each failure mode has its own class and a
 * stable `code`; messages name the offending value (never key material) and the rule it broke.
 */
import { LoftError, type LoftErrorOptions } from '../util/errors.js';

/** Quote a value for an error message, shortened so a huge input cannot flood a log. */
export function quote(value: string, max = 120): string {
  const shown = value.length > max ? `${value.slice(0, max)}...` : value;
  return JSON.stringify(shown);
}

/** A string that is not valid nix base32 (bad character, impossible length, leftover bits). */
export class InvalidNix32Error extends LoftError {
  constructor(
    readonly value: string,
    reason: string,
  ) {
    super('NIX32_INVALID', 'format', `invalid nix base32 string ${quote(value)}: ${reason}`);
  }
}

/** A hash string in none of the forms Nix writes, or of the wrong length for its type. */
export class InvalidHashError extends LoftError {
  constructor(
    readonly value: string,
    reason: string,
    options: LoftErrorOptions = {},
  ) {
    super('HASH_INVALID', 'format', `invalid hash ${quote(value)}: ${reason}`, {
      hint:
        options.hint ??
        'expected <type>:<hex|nix32|base64> or SRI <type>-<base64>, e.g. sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s',
      cause: options.cause,
    });
  }
}

/** Which store path rule a value broke; stable, for callers that branch on it. */
export type StorePathRule =
  | 'store-dir'
  | 'not-in-store'
  | 'too-short'
  | 'hash-part'
  | 'missing-dash'
  | 'name-empty'
  | 'name-too-long'
  | 'name-dots'
  | 'name-charset';

export class InvalidStorePathError extends LoftError {
  constructor(
    readonly value: string,
    readonly rule: StorePathRule,
    readonly reason: string,
  ) {
    super('STORE_PATH_INVALID', 'format', `invalid store path ${quote(value)}: ${reason}`, {
      hint:
        rule === 'not-in-store' || rule === 'store-dir'
          ? 'give a path directly inside the store directory, like /nix/store/<32-char hash>-<name>'
          : 'a store path is <store dir>/<32 nix32 chars>-<name>, the name at most 211 characters of [0-9A-Za-z+-._?=]',
    });
  }
}

/** A narinfo text that breaks Nix's rules; `line` is 1-based, 0 for whole-file problems. */
export class InvalidNarInfoError extends LoftError {
  constructor(
    readonly line: number,
    reason: string,
    options: LoftErrorOptions = {},
  ) {
    super(
      'NARINFO_INVALID',
      'format',
      line > 0 ? `invalid narinfo, line ${line}: ${reason}` : `invalid narinfo: ${reason}`,
      options,
    );
  }
}

/** A narinfo value that cannot be written or fingerprinted (e.g. a NarSize of 0). */
export class NarInfoValueError extends LoftError {
  constructor(reason: string) {
    super('NARINFO_VALUE_INVALID', 'internal', reason);
  }
}

/**
 * A signing key file that cannot be used. `source` names the file (or setting) it came from;
 * the message says which format was expected and never includes the key's text.
 */
export class SigningKeyError extends LoftError {
  constructor(
    readonly source: string,
    reason: string,
    readonly keyKind: 'secret' | 'public',
  ) {
    super(
      'SIGNING_KEY_INVALID',
      'config',
      `${keyKind} signing key from ${source} is unusable: ${reason}; expected one line "<key name>:<base64 of ${keyKind === 'secret' ? '64' : '32'} bytes>"`,
      {
        hint:
          keyKind === 'secret'
            ? 'make a key pair with `nix-store --generate-binary-cache-key <name> secret.key public.key` and point at the secret file'
            : 'a public key looks like "<name>:<44 base64 chars>"; get it from the public file written by `nix-store --generate-binary-cache-key`',
      },
    );
  }
}

/** A `.drv` file that is not a derivation in Nix's ATerm form. */
export class DerivationParseError extends LoftError {
  constructor(
    readonly source: string,
    reason: string,
  ) {
    super('DERIVATION_INVALID', 'format', `invalid derivation ${source}: ${reason}`);
  }
}

/** A realisation (JSON from the daemon or a cache) without the fields Nix writes. */
export class InvalidRealisationError extends LoftError {
  constructor(value: string, reason: string) {
    super('REALISATION_INVALID', 'format', `invalid realisation ${quote(value)}: ${reason}`);
  }
}

/** A NAR byte stream that is not a canonical Nix archive; `offset` is where it went wrong. */
export class InvalidNarError extends LoftError {
  constructor(
    readonly offset: number,
    reason: string,
  ) {
    super('NAR_INVALID', 'format', `invalid NAR at byte ${offset}: ${reason}`);
  }
}

/** The NAR parser was ended before the archive was complete. */
export class TruncatedNarError extends LoftError {
  constructor(
    readonly offset: number,
    expected: string,
  ) {
    super('NAR_TRUNCATED', 'format', `NAR ends early after ${offset} bytes (expected ${expected})`);
  }
}

/** The encoder met a file a NAR cannot hold (socket, device, fifo) or a bad directory entry. */
export class NarUnsupportedFileError extends LoftError {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super('NAR_UNSUPPORTED_FILE', 'work', `cannot archive ${quote(path, 400)}: ${reason}`, {
      hint: 'a NAR holds only regular files, directories and symlinks; remove or replace this file',
    });
  }
}

/** A file changed size while it was being archived, so the NAR would be inconsistent. */
export class NarSourceChangedError extends LoftError {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super('NAR_SOURCE_CHANGED', 'work', `${quote(path, 400)} changed while archiving: ${reason}`, {
      hint: 'store paths are immutable; if this is not a store path, archive it when nothing writes to it',
    });
  }
}

/** A listing was requested before the parser saw the whole archive (a caller bug). */
export class NarListingIncompleteError extends LoftError {
  constructor() {
    super(
      'NAR_LISTING_INCOMPLETE',
      'internal',
      'the NAR listing is incomplete: the archive was not parsed to its end',
    );
  }
}
