/**
 * The signing key file and `signing_key_name`. The rule:
 *
 * - A Nix secret key file holds `name:base64(64 bytes)`; its name is the key's name. When
 *   `signing_key_name` is also set it must equal that name, otherwise start-up fails: a
 *   mismatch means narinfos would be signed under a name clients do not trust.
 * - A file holding bare base64 (no name) needs `signing_key_name`, which supplies the name.
 * - `signing_key_name` without `signing_key_path` signs nothing (the loader warns).
 *
 * The key text never appears in errors; `SigningKeyText` keeps it out of inspect and JSON.
 */
import { readFile as fsReadFile } from 'node:fs/promises';
import { decodeBase64Strict } from '../nix/base64.js';
import { SigningKeyError } from './errors.js';
import type { LoftConfig } from './types.js';

const MAKE_ONE =
  'make one with: nix-store --generate-binary-cache-key <name> <secret-file> <public-file>';

const inspectSymbol = Symbol.for('nodejs.util.inspect.custom');

/** A validated `name:base64` secret key; `reveal()` is for the signer only. */
export class SigningKeyText {
  readonly name: string;
  readonly path: string;
  readonly #text: string;

  constructor(name: string, path: string, text: string) {
    this.name = name;
    this.path = path;
    this.#text = text;
  }

  /** `name:base64`, the form `parseSecretKey` in src/nix/signing.ts accepts. */
  reveal(): string {
    return this.#text;
  }

  toJSON(): { name: string; path: string } {
    return { name: this.name, path: this.path };
  }

  toString(): string {
    return `SigningKey(${this.name} from ${this.path})`;
  }

  [inspectSymbol](): string {
    return `SigningKeyText { name: ${JSON.stringify(this.name)}, path: ${JSON.stringify(this.path)}, key: [redacted] }`;
  }
}

/** Pure: apply the rule above to a key file's contents. */
export function resolveSigningKeyText(
  contents: string,
  opts: { path: string; configuredName: string | undefined },
): SigningKeyText {
  const { path, configuredName } = opts;
  const text = contents.trim();
  const colon = text.indexOf(':');
  const fileName = colon === -1 ? undefined : text.slice(0, colon);
  const b64 = colon === -1 ? text : text.slice(colon + 1);

  const bad = (what: string) =>
    new SigningKeyError(
      path,
      `signing key file ${path} ${what}; expected a Nix secret key "name:base64" (64 bytes)`,
      MAKE_ONE,
    );
  if (text === '') throw bad('is empty');
  if (/\s/.test(text)) throw bad('contains whitespace inside the key');
  const keyBytes = decodeBase64Strict(b64)?.length;
  if (keyBytes === 32) {
    // The other file nix-store --generate-binary-cache-key writes: easy to mix up.
    throw new SigningKeyError(
      path,
      `signing key file ${path} holds a public key (32 bytes), not the secret key that signs`,
      'point signing_key_path at the secret file (the 2nd argument of nix-store --generate-binary-cache-key); ' +
        "the public key goes into the clients' trusted-public-keys",
    );
  }
  if (keyBytes !== 64) {
    throw bad(
      fileName === undefined
        ? 'is not base64 of a 64-byte key'
        : 'does not hold a 64-byte base64 key after the name',
    );
  }
  if (fileName === '') throw bad('has an empty key name before ":"');

  if (fileName === undefined) {
    if (configuredName === undefined) {
      throw new SigningKeyError(
        path,
        `signing key file ${path} has no key name (bare base64)`,
        'set loft.signing_key_name to the name clients trust (the part before ":" of the public key)',
      );
    }
    return new SigningKeyText(configuredName, path, `${configuredName}:${b64}`);
  }
  if (configuredName !== undefined && configuredName !== fileName) {
    throw new SigningKeyError(
      path,
      `loft.signing_key_name is "${configuredName}" but the key in ${path} is named "${fileName}"`,
      'remove signing_key_name (the key file names itself) or point signing_key_path at the right key',
    );
  }
  return new SigningKeyText(fileName, path, text);
}

/**
 * Read the configured key file and apply the naming rule. Undefined when signing is off.
 * Called at start-up so a bad key fails before any upload.
 */
export async function readSigningKey(
  config: Pick<LoftConfig, 'signingKeyPath' | 'signingKeyName'>,
  io: { readFile?: (path: string) => Promise<string> } = {},
): Promise<SigningKeyText | undefined> {
  const path = config.signingKeyPath;
  if (path === undefined) return undefined;
  const read = io.readFile ?? ((p: string) => fsReadFile(p, 'utf8'));
  let contents: string;
  try {
    contents = await read(path);
  } catch (e) {
    const code = (e as { code?: string }).code;
    const why =
      code === 'ENOENT'
        ? 'does not exist'
        : code === 'EACCES' || code === 'EPERM'
          ? 'is not readable by this user'
          : 'cannot be read';
    throw new SigningKeyError(
      path,
      `signing key file ${path} ${why} (loft.signing_key_path)`,
      code === 'ENOENT' ? MAKE_ONE : 'check the file permissions (the service user must read it)',
      e,
    );
  }
  return resolveSigningKeyText(contents, { path, configuredName: config.signingKeyName });
}
