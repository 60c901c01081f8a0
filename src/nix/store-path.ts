/**
 * Store paths: `<storeDir>/<32-char nix32 hash part>-<name>`. The name rules are Nix's:
 * at most 211 characters of [0-9A-Za-z+-._?=]. Names that are "." or ".." or whose first
 * dash-separated part is one of them are refused, as current Nix refuses them (Nix 2.8 still
 * accepted them, but a cache must stay readable by every client); other names starting with
 * "." (".gitignore") are valid in every version.
 */
import { InvalidStorePathError, type StorePathRule } from './errors.js';
import { NIX32_ALPHABET } from './nixbase32.js';

export const DEFAULT_STORE_DIR = '/nix/store';
/** Length of the hash part: nix32 of a 20-byte (160-bit) truncated sha256. */
export const HASH_PART_LENGTH = 32;
/** Maximum name length Nix accepts. */
export const STORE_PATH_NAME_MAX = 211;

export interface StorePath {
  /** The store directory, e.g. `/nix/store`. */
  readonly storeDir: string;
  /** The 32 nix32 characters. */
  readonly hashPart: string;
  /** What follows the dash. */
  readonly name: string;
  /** The full path, `<storeDir>/<basename>`. */
  readonly path: string;
  /** `<hashPart>-<name>`. */
  readonly basename: string;
}

const HASH_PART = new RegExp(`^[${NIX32_ALPHABET}]{${HASH_PART_LENGTH}}$`);
const NAME_CHARS = /^[0-9A-Za-z+\-._?=]*$/;

/** True for a store path hash part: 32 nix32 characters. */
export function isHashPart(s: string): boolean {
  return HASH_PART.test(s);
}

/** Check a store directory: absolute and canonical (no trailing slash, no `.`/`..`/empty parts). */
export function validateStoreDir(storeDir: string): string {
  const parts = storeDir.split('/');
  if (
    storeDir.length < 2 ||
    parts[0] !== '' ||
    parts.slice(1).some((p) => p === '' || p === '.' || p === '..') ||
    storeDir.includes('\0')
  ) {
    throw new InvalidStorePathError(
      storeDir,
      'store-dir',
      'a store directory must be an absolute path without a trailing slash or "." / ".." parts',
    );
  }
  return storeDir;
}

function fail(value: string, rule: StorePathRule, reason: string): never {
  throw new InvalidStorePathError(value, rule, reason);
}

/** Check a store path name (the part after the hash and dash). Returns it unchanged. */
export function validateStorePathName(name: string, whole: string = name): string {
  if (name.length === 0) fail(whole, 'name-empty', 'the name after the hash is empty');
  if (name.length > STORE_PATH_NAME_MAX) {
    fail(
      whole,
      'name-too-long',
      `the name has ${name.length} characters, more than ${STORE_PATH_NAME_MAX}`,
    );
  }
  const first = name.split('-', 1)[0];
  if (first === '.' || first === '..') {
    fail(whole, 'name-dots', `the name's first dash-separated part must not be "${first}"`);
  }
  if (!NAME_CHARS.test(name)) {
    const bad = [...name].find((c) => !NAME_CHARS.test(c)) ?? '';
    fail(
      whole,
      'name-charset',
      `the name contains ${JSON.stringify(bad)}, allowed are 0-9 A-Z a-z + - . _ ? =`,
    );
  }
  return name;
}

/** Parse `<hashPart>-<name>` (a store path's last component). */
export function parseStorePathBasename(
  basename: string,
  storeDir: string = DEFAULT_STORE_DIR,
): StorePath {
  validateStoreDir(storeDir);
  if (basename.length < HASH_PART_LENGTH + 1) {
    fail(
      basename,
      'too-short',
      `a store path basename is ${HASH_PART_LENGTH} hash characters, "-" and a name`,
    );
  }
  const hashPart = basename.slice(0, HASH_PART_LENGTH);
  if (!HASH_PART.test(hashPart)) {
    fail(
      basename,
      'hash-part',
      `the hash part ${JSON.stringify(hashPart)} is not ${HASH_PART_LENGTH} nix32 characters (${NIX32_ALPHABET})`,
    );
  }
  if (basename[HASH_PART_LENGTH] !== '-') {
    fail(basename, 'missing-dash', `the hash part must be followed by "-"`);
  }
  const name = validateStorePathName(basename.slice(HASH_PART_LENGTH + 1), basename);
  return { storeDir, hashPart, name, basename, path: `${storeDir}/${basename}` };
}

/**
 * Parse a full store path. It must be exactly `<storeDir>/<basename>`: no sub-path, no
 * trailing slash (resolving user paths is the store layer's job).
 */
export function parseStorePath(path: string, storeDir: string = DEFAULT_STORE_DIR): StorePath {
  validateStoreDir(storeDir);
  const prefix = `${storeDir}/`;
  if (!path.startsWith(prefix)) {
    fail(path, 'not-in-store', `it is not in the store directory ${storeDir}`);
  }
  const basename = path.slice(prefix.length);
  if (basename.includes('/')) {
    fail(path, 'not-in-store', `it is not directly in ${storeDir} (a path inside a store path?)`);
  }
  try {
    return parseStorePathBasename(basename, storeDir);
  } catch (e) {
    if (e instanceof InvalidStorePathError) throw new InvalidStorePathError(path, e.rule, e.reason);
    throw e;
  }
}

/** True if `path` parses as a store path in `storeDir`. */
export function isStorePath(path: string, storeDir: string = DEFAULT_STORE_DIR): boolean {
  try {
    parseStorePath(path, storeDir);
    return true;
  } catch {
    return false;
  }
}

/** The basename of a full store path, validated. */
export function storePathBasename(path: string, storeDir: string = DEFAULT_STORE_DIR): string {
  return parseStorePath(path, storeDir).basename;
}

/**
 * Hash part of a store path, without validation: for paths a trusted source gave (the
 * daemon's lists and path infos, path infos the local index recorded), where parsing each
 * one would cost more than the rest of the work on it.
 */
export function hashPartFast(storePath: string): string {
  const start = storePath.lastIndexOf('/') + 1;
  return storePath.slice(start, start + HASH_PART_LENGTH);
}

/** The hash part of a full store path, validated. */
export function storePathHashPart(path: string, storeDir: string = DEFAULT_STORE_DIR): string {
  return parseStorePath(path, storeDir).hashPart;
}
