/**
 * Nix binary cache signing keys (ed25519) and narinfo signatures.
 *
 * Key files are `<name>:<base64>`: 64 bytes (seed, then public key) for a secret key, 32
 * for a public one. Signatures are `<name>:<base64 of 64 bytes>` over the narinfo
 * fingerprint. A SecretKey holds no raw key bytes, only a node:crypto KeyObject, and shows
 * nothing but its name through util.inspect, JSON.stringify and String().
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign as cryptoSign,
  verify as cryptoVerify,
  type KeyObject,
} from 'node:crypto';
import { decodeBase64Strict } from './base64.js';
import { SigningKeyError } from './errors.js';
import { narInfoFingerprint, type NarInfo } from './narinfo.js';

/** DER prefixes that wrap a raw ed25519 seed (PKCS#8) or public key (SPKI). */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const SEED_BYTES = 32;
const PUBLIC_BYTES = 32;
const SECRET_BYTES = 64;
const SIGNATURE_BYTES = 64;

const inspectSymbol = Symbol.for('nodejs.util.inspect.custom');

function rawPublicKey(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'spki' }).subarray(SPKI_ED25519_PREFIX.length);
}

/** Split `name:base64` without echoing any of it in errors. */
function splitKeyText(
  text: string,
  source: string,
  kind: 'secret' | 'public',
  bytes: number,
): [string, Buffer] {
  const trimmed = text.trim();
  if (trimmed.length === 0) throw new SigningKeyError(source, 'the file is empty', kind);
  if (/\s/.test(trimmed)) {
    throw new SigningKeyError(source, 'it has more than one line or contains whitespace', kind);
  }
  const colon = trimmed.indexOf(':');
  if (colon < 0)
    throw new SigningKeyError(source, 'there is no ":" between the key name and the key', kind);
  if (colon === 0) throw new SigningKeyError(source, 'the key name before ":" is empty', kind);
  const name = trimmed.slice(0, colon);
  const data = decodeBase64Strict(trimmed.slice(colon + 1));
  if (data === undefined)
    throw new SigningKeyError(source, 'the part after ":" is not valid base64', kind);
  if (data.length !== bytes) {
    const other =
      kind === 'secret' && data.length === PUBLIC_BYTES ? ' (is this the public key file?)' : '';
    throw new SigningKeyError(
      source,
      `the key decodes to ${data.length} bytes, not ${bytes}${other}`,
      kind,
    );
  }
  return [name, data];
}

export class PublicKey {
  readonly name: string;
  /** The raw 32-byte ed25519 public key. */
  readonly key: Buffer;
  readonly #keyObject: KeyObject;

  constructor(name: string, key: Uint8Array) {
    if (name.length === 0 || name.includes(':') || /\s/.test(name)) {
      throw new SigningKeyError(
        'arguments',
        'the key name must be non-empty without ":" or whitespace',
        'public',
      );
    }
    if (key.length !== PUBLIC_BYTES) {
      throw new SigningKeyError(
        'arguments',
        `the key has ${key.length} bytes, not ${PUBLIC_BYTES}`,
        'public',
      );
    }
    this.name = name;
    this.key = Buffer.from(key);
    this.#keyObject = createPublicKey({
      key: Buffer.concat([SPKI_ED25519_PREFIX, this.key]),
      format: 'der',
      type: 'spki',
    });
  }

  /**
   * True if `sig` (`name:base64`) is this key's valid signature of `data`. A signature by
   * another key name, or malformed, is simply not valid.
   */
  verify(data: string | Uint8Array, sig: string): boolean {
    const colon = sig.indexOf(':');
    if (colon < 0 || sig.slice(0, colon) !== this.name) return false;
    const bytes = decodeBase64Strict(sig.slice(colon + 1));
    if (bytes === undefined || bytes.length !== SIGNATURE_BYTES) return false;
    return cryptoVerify(
      null,
      typeof data === 'string' ? Buffer.from(data) : data,
      this.#keyObject,
      bytes,
    );
  }

  /** `name:base64`, the form of a public key file and of `trusted-public-keys`. */
  toString(): string {
    return `${this.name}:${this.key.toString('base64')}`;
  }

  toJSON(): string {
    return this.toString();
  }

  equals(other: PublicKey): boolean {
    return this.name === other.name && this.key.equals(other.key);
  }
}

export class SecretKey {
  readonly name: string;
  readonly #keyObject: KeyObject;
  readonly #publicKey: PublicKey;

  private constructor(name: string, keyObject: KeyObject) {
    this.name = name;
    this.#keyObject = keyObject;
    this.#publicKey = new PublicKey(name, rawPublicKey(createPublicKey(keyObject)));
  }

  /** From a raw 32-byte seed. */
  static fromSeed(name: string, seed: Uint8Array): SecretKey {
    if (name.length === 0 || name.includes(':') || /\s/.test(name)) {
      throw new SigningKeyError(
        'arguments',
        'the key name must be non-empty without ":" or whitespace',
        'secret',
      );
    }
    if (seed.length !== SEED_BYTES) {
      throw new SigningKeyError(
        'arguments',
        `the seed has ${seed.length} bytes, not ${SEED_BYTES}`,
        'secret',
      );
    }
    const der = Buffer.concat([PKCS8_ED25519_PREFIX, seed]);
    try {
      return new SecretKey(name, createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }));
    } finally {
      der.fill(0);
    }
  }

  /** `name:base64(signature)`; ed25519 is deterministic, so this equals Nix's signature. */
  sign(data: string | Uint8Array): string {
    const sig = cryptoSign(
      null,
      typeof data === 'string' ? Buffer.from(data) : data,
      this.#keyObject,
    );
    return `${this.name}:${sig.toString('base64')}`;
  }

  publicKey(): PublicKey {
    return this.#publicKey;
  }

  /**
   * The secret key file text, `name:base64(seed || public key)`, as Nix writes it. The one
   * deliberate way to get the secret bytes out (for writing a freshly generated key).
   */
  exportKeyFile(): string {
    const seed = this.#keyObject
      .export({ format: 'der', type: 'pkcs8' })
      .subarray(PKCS8_ED25519_PREFIX.length);
    const both = Buffer.concat([seed, this.#publicKey.key]);
    const text = `${this.name}:${both.toString('base64')}`;
    seed.fill(0);
    both.fill(0);
    return text;
  }

  toString(): string {
    return `[SecretKey ${this.name}]`;
  }

  toJSON(): { name: string; secret: string } {
    return { name: this.name, secret: '[redacted]' };
  }

  [inspectSymbol](): string {
    return this.toString();
  }
}

/**
 * Parse a Nix secret key file's text. `source` names the file (or setting) in errors;
 * errors never contain the text.
 */
export function parseSecretKey(text: string, source: string): SecretKey {
  const [name, bytes] = splitKeyText(text, source, 'secret', SECRET_BYTES);
  try {
    const key = SecretKey.fromSeed(name, bytes.subarray(0, SEED_BYTES));
    if (!key.publicKey().key.equals(bytes.subarray(SEED_BYTES))) {
      throw new SigningKeyError(
        source,
        'its public half does not belong to its secret half (corrupt file?)',
        'secret',
      );
    }
    return key;
  } catch (e) {
    if (e instanceof SigningKeyError && e.source === 'arguments') {
      throw new SigningKeyError(source, 'the key name is invalid', 'secret');
    }
    throw e;
  } finally {
    bytes.fill(0);
  }
}

/** Parse a Nix public key (`name:base64` of 32 bytes), from a file or `trusted-public-keys`. */
export function parsePublicKey(text: string, source: string): PublicKey {
  const [name, bytes] = splitKeyText(text, source, 'public', PUBLIC_BYTES);
  return new PublicKey(name, bytes);
}

/** A new random key pair, like `nix-store --generate-binary-cache-key`. */
export function generateKeyPair(name: string): { secretKey: SecretKey; publicKey: PublicKey } {
  const { privateKey } = generateKeyPairSync('ed25519');
  const seed = privateKey
    .export({ format: 'der', type: 'pkcs8' })
    .subarray(PKCS8_ED25519_PREFIX.length);
  try {
    const secretKey = SecretKey.fromSeed(name, seed);
    return { secretKey, publicKey: secretKey.publicKey() };
  } finally {
    seed.fill(0);
  }
}

/**
 * A copy of `info` with `key`'s signature of its fingerprint added. Existing signatures are
 * kept; signing twice adds nothing (ed25519 signatures are deterministic).
 */
export function signNarInfo<T extends NarInfo>(info: T, key: SecretKey, storeDir?: string): T {
  const sig = key.sign(narInfoFingerprint(info, storeDir));
  return { ...info, sigs: info.sigs.includes(sig) ? [...info.sigs] : [...info.sigs, sig] };
}

/** True if one of `info`'s signatures is valid for one of `keys`. */
export function verifyNarInfoSignature(
  info: NarInfo,
  keys: readonly PublicKey[],
  storeDir?: string,
): boolean {
  return validNarInfoSigners(info, keys, storeDir).length > 0;
}

/** The keys among `keys` with a valid signature on `info`. */
export function validNarInfoSigners(
  info: NarInfo,
  keys: readonly PublicKey[],
  storeDir?: string,
): PublicKey[] {
  const fingerprint = narInfoFingerprint(info, storeDir);
  return keys.filter((k) => info.sigs.some((s) => k.verify(fingerprint, s)));
}
