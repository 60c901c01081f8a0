/**
 * The object layout of a Nix binary cache, shared by upload and prune so both agree on
 * where things live. Pure: string helpers only.
 *
 *   nix-cache-info                 cache metadata (StoreDir, WantMassQuery, Priority)
 *   <hashPart>.narinfo             one per store path; written last (it publishes the path)
 *   <hashPart>.ls                  the NAR listing (`.ls` JSON), optional
 *   nar/<nix32 narHash>.nar<ext>   the (compressed) NAR; <ext> is '', '.xz' or '.zst'
 */
import { NIX32_ALPHABET } from '../nix/nixbase32.js';
import { isHashPart } from '../nix/store-path.js';
import { InvalidObjectKeyError } from './errors.js';

export const CACHE_INFO_KEY = 'nix-cache-info';
export const NAR_PREFIX = 'nar/';
export const NARINFO_SUFFIX = '.narinfo';
export const LISTING_SUFFIX = '.ls';

/** Content types Nix's own binary cache code uses for these objects. */
export const CONTENT_TYPES = {
  cacheInfo: 'text/x-nix-cache-info',
  narInfo: 'text/x-nix-narinfo',
  listing: 'application/json',
  nar: 'application/x-nix-nar',
} as const;

const NIX32 = `[${NIX32_ALPHABET}]`;
const SHA256_NIX32 = new RegExp(`^sha256:(${NIX32}{52})$`);
const NAR_EXTENSIONS = new Set(['', '.xz', '.zst', '.bz2', '.br', '.lz4', '.lzip', '.gz']);
const NARINFO_KEY = new RegExp(`^(${NIX32}{32})\\.narinfo$`);
const NAR_KEY = new RegExp(`^nar/(${NIX32}{52})\\.nar(\\.[a-z0-9]+)?$`);

function checkHashPart(hashPart: string): string {
  if (!isHashPart(hashPart)) {
    throw new InvalidObjectKeyError(hashPart, 'a store path hash part is 32 nix32 characters');
  }
  return hashPart;
}

export function narInfoKey(hashPart: string): string {
  return `${checkHashPart(hashPart)}${NARINFO_SUFFIX}`;
}

export function listingKey(hashPart: string): string {
  return `${checkHashPart(hashPart)}${LISTING_SUFFIX}`;
}

/**
 * The key of a NAR, from its NAR hash (`sha256:<nix32>`) and the compression's extension.
 *
 * Why the NAR hash and not the file hash Nix uses: the file hash is known only after the
 * whole compressed stream has gone by, but a multipart upload needs its key before the
 * first byte is sent. The NAR hash is known up front (the store's path info), so the key is
 * deterministic: a retried or concurrent upload of the same path overwrites the same object
 * instead of leaving an orphan. Two writers with different compressor versions or levels can
 * store different bytes under one key; any of them decompresses to the same NAR, which is
 * what Nix verifies (NarHash), but the FileHash/FileSize in the narinfo describe the bytes
 * of the writer that wrote it. The narinfo's URL field carries the key, so readers never
 * assume either scheme.
 */
export function narKey(narHash: string, extension: string): string {
  const m = SHA256_NIX32.exec(narHash);
  if (!m) throw new InvalidObjectKeyError(narHash, 'a NAR hash must be "sha256:<52 nix32 chars>"');
  if (!NAR_EXTENSIONS.has(extension)) {
    throw new InvalidObjectKeyError(extension, 'unknown NAR file extension');
  }
  return `${NAR_PREFIX}${m[1]}.nar${extension}`;
}

/** The hash part of a `<hashPart>.narinfo` key, or `undefined` for any other key. */
export function hashPartOfNarInfoKey(key: string): string | undefined {
  return NARINFO_KEY.exec(key)?.[1];
}

/** The hash part of a `<hashPart>.ls` key, or `undefined` for any other key. */
export function hashPartOfListingKey(key: string): string | undefined {
  if (!key.endsWith(LISTING_SUFFIX)) return undefined;
  const hp = key.slice(0, -LISTING_SUFFIX.length);
  return isHashPart(hp) ? hp : undefined;
}

export function isNarInfoKey(key: string): boolean {
  return NARINFO_KEY.test(key);
}

export function isNarKey(key: string): boolean {
  return NAR_KEY.test(key);
}

/**
 * The object key a narinfo's `URL:` points at. Nix resolves it relative to the cache root;
 * we accept only plain relative paths (what every cache writer produces), so prune never
 * follows a URL out of the bucket.
 */
export function keyOfNarUrl(url: string): string {
  assertValidKey(url);
  return url;
}

/**
 * Keys are relative paths of safe segments: no empty, `.` or `..` segments, no leading
 * slash, no backslash or control characters, at most 1024 bytes (the S3 limit). The local
 * directory store maps them to files, so this is also its path-traversal guard.
 */
export function assertValidKey(key: string): void {
  if (key.length === 0) throw new InvalidObjectKeyError(key, 'empty');
  if (Buffer.byteLength(key) > 1024) throw new InvalidObjectKeyError(key, 'longer than 1024 bytes');
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f\\]/.test(key)) {
    throw new InvalidObjectKeyError(key, 'control characters and backslashes are not allowed');
  }
  if (key.startsWith('/')) throw new InvalidObjectKeyError(key, 'must be relative');
  for (const seg of key.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') {
      throw new InvalidObjectKeyError(key, 'empty, "." and ".." segments are not allowed');
    }
  }
}

/** Prefixes are keys in the making: the same rules, but empty and a trailing `/` are fine. */
export function assertValidPrefix(prefix: string): void {
  if (prefix === '') return;
  assertValidKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
}
