/**
 * Hashes in the forms Nix reads and writes: `<type>:<hex|nix32|base64>` (the encoding is told
 * apart by length, as Nix does), SRI `<type>-<base64>`, and bare digests when the type is
 * known from context (the daemon's hex narHash).
 */
import { createHash } from 'node:crypto';
import { decodeBase64Strict } from './base64.js';
import { InvalidHashError } from './errors.js';
import { decodeNix32, encodeNix32, nix32Length } from './nixbase32.js';

export type HashAlgo = 'md5' | 'sha1' | 'sha256' | 'sha512';

/** Digest sizes in bytes. */
export const HASH_SIZES: Readonly<Record<HashAlgo, number>> = {
  md5: 16,
  sha1: 20,
  sha256: 32,
  sha512: 64,
};

export function isHashAlgo(s: string): s is HashAlgo {
  return Object.prototype.hasOwnProperty.call(HASH_SIZES, s);
}

const HEX = /^[0-9a-fA-F]*$/;

export class Hash {
  readonly algo: HashAlgo;
  readonly digest: Buffer;

  constructor(algo: HashAlgo, digest: Uint8Array) {
    if (!isHashAlgo(algo)) {
      throw new InvalidHashError(
        String(algo),
        'unknown hash type (expected md5, sha1, sha256 or sha512)',
      );
    }
    if (digest.length !== HASH_SIZES[algo]) {
      throw new InvalidHashError(
        Buffer.from(digest).toString('hex'),
        `a ${algo} digest has ${HASH_SIZES[algo]} bytes, not ${digest.length}`,
      );
    }
    this.algo = algo;
    this.digest = Buffer.from(digest);
  }

  /** Hash `data` with `algo`. */
  static of(algo: HashAlgo, data: Uint8Array | string): Hash {
    return new Hash(algo, createHash(algo).update(data).digest());
  }

  /**
   * Parse any form Nix accepts: `sha256:<hex|nix32|base64>`, SRI `sha256-<base64>`, or a bare
   * hex/nix32/base64 digest when `defaultAlgo` says the type. A prefix that disagrees with
   * `defaultAlgo` is an error, as in Nix.
   */
  static parse(s: string, defaultAlgo?: HashAlgo): Hash {
    let rest = s;
    let algo: HashAlgo | undefined;
    let sri = false;
    let sep = s.indexOf(':');
    if (sep < 0) {
      sep = s.indexOf('-');
      sri = sep >= 0;
    }
    if (sep >= 0) {
      const prefix = s.slice(0, sep);
      if (!isHashAlgo(prefix)) {
        throw new InvalidHashError(
          s,
          `unknown hash type ${JSON.stringify(prefix)} (expected md5, sha1, sha256 or sha512)`,
        );
      }
      if (defaultAlgo !== undefined && prefix !== defaultAlgo) {
        throw new InvalidHashError(s, `expected a ${defaultAlgo} hash, got ${prefix}`);
      }
      algo = prefix;
      rest = s.slice(sep + 1);
    } else if (defaultAlgo !== undefined) {
      algo = defaultAlgo;
    } else {
      throw new InvalidHashError(
        s,
        'the hash type is missing (expected a prefix such as "sha256:")',
      );
    }
    return new Hash(algo, decodeDigest(s, rest, algo, sri));
  }

  /** Like `parse`, but `undefined` instead of an error. */
  static tryParse(s: string, defaultAlgo?: HashAlgo): Hash | undefined {
    try {
      return Hash.parse(s, defaultAlgo);
    } catch {
      return undefined;
    }
  }

  /** `sha256:<nix32>`, the form of narinfo NarHash/FileHash and fingerprints. */
  toNix32String(): string {
    return `${this.algo}:${this.toNix32()}`;
  }

  /** Bare nix32 digest. */
  toNix32(): string {
    return encodeNix32(this.digest);
  }

  /** Bare lowercase hex digest (the daemon's form). */
  toHex(): string {
    return this.digest.toString('hex');
  }

  /** `sha256:<hex>` (the form of the store database). */
  toHexString(): string {
    return `${this.algo}:${this.toHex()}`;
  }

  /** Bare standard base64 digest, padded. */
  toBase64(): string {
    return this.digest.toString('base64');
  }

  /** `sha256:<base64>`. */
  toBase64String(): string {
    return `${this.algo}:${this.toBase64()}`;
  }

  /** SRI `sha256-<base64>` (the form of `nix path-info --json` in 2.4+). */
  toSri(): string {
    return `${this.algo}-${this.toBase64()}`;
  }

  equals(other: Hash): boolean {
    return this.algo === other.algo && this.digest.equals(other.digest);
  }

  toString(): string {
    return this.toNix32String();
  }

  toJSON(): string {
    return this.toNix32String();
  }
}

function decodeDigest(original: string, rest: string, algo: HashAlgo, sri: boolean): Buffer {
  const size = HASH_SIZES[algo];
  if (!sri && rest.length === size * 2) {
    if (!HEX.test(rest)) throw new InvalidHashError(original, 'invalid hexadecimal digits');
    return Buffer.from(rest, 'hex');
  }
  if (!sri && rest.length === nix32Length(size)) {
    try {
      return decodeNix32(rest);
    } catch (e) {
      throw new InvalidHashError(original, (e as Error).message, { cause: e });
    }
  }
  if (sri || rest.length === Math.ceil(size / 3) * 4) {
    const d = decodeBase64Strict(rest);
    if (d === undefined || d.length !== size) {
      throw new InvalidHashError(original, `not the base64 of a ${size}-byte ${algo} digest`);
    }
    return d;
  }
  throw new InvalidHashError(
    original,
    `wrong length ${rest.length} for ${algo} (hex ${size * 2}, nix32 ${nix32Length(size)}, base64 ${Math.ceil(size / 3) * 4})`,
  );
}
