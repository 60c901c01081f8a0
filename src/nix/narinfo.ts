/**
 * `.narinfo` files: parse with Nix's rules (`Key: value\n` lines, required StorePath,
 * NarHash, URL and a non-zero NarSize, a missing Compression meaning bzip2) and format in
 * Nix's field order and forms, so a narinfo Nix wrote re-formats to the same bytes.
 */
import { InvalidNarInfoError, NarInfoValueError } from './errors.js';
import { Hash } from './hash.js';
import { DEFAULT_STORE_DIR, parseStorePath, parseStorePathBasename } from './store-path.js';

export interface NarInfo {
  /** Full store path. */
  storePath: string;
  /** Where the NAR is, relative to the cache root, e.g. `nar/<hash>.nar.zst`. */
  url: string;
  /** `zstd`, `xz`, `none`, ...; a narinfo without the field means `bzip2`. */
  compression: string;
  /** Hash of the compressed file, `sha256:<nix32>`. */
  fileHash?: string;
  fileSize?: number;
  /** `sha256:<nix32>`. */
  narHash: string;
  narSize: number;
  /** Basenames (`<hash>-<name>`), sorted; a self-reference is included. */
  references: string[];
  /** `.drv` basename, absent when unknown. */
  deriver?: string;
  /** The `System` field Nix writes for some paths. */
  system?: string;
  /** `keyname:base64` signatures. */
  sigs: string[];
  /** Content address, passed through (`fixed:r:sha256:...`, `text:sha256:...`). */
  ca?: string;
  /** Fields Nix does not know, kept in order and written after the known ones. */
  extra?: { key: string; value: string }[];
}

export interface NarInfoParseOptions {
  storeDir?: string;
}

const KEY = /^[A-Za-z0-9_.-]+$/;
const DIGITS = /^[0-9]+$/;

/** Parse a narinfo. Hash fields are normalised to `<algo>:<nix32>`, the form Nix writes. */
export function parseNarInfo(text: string, options: NarInfoParseOptions = {}): NarInfo {
  const storeDir = options.storeDir ?? DEFAULT_STORE_DIR;
  if (text.length > 0 && !text.endsWith('\n')) {
    throw new InvalidNarInfoError(
      text.split('\n').length,
      'the last line does not end with a newline',
    );
  }
  const lines = text.split('\n');
  lines.pop();

  let storePath: string | undefined;
  let url: string | undefined;
  let compression: string | undefined;
  let fileHash: string | undefined;
  let fileSize: number | undefined;
  let narHash: string | undefined;
  let narSize: number | undefined;
  let references: string[] | undefined;
  let deriver: string | undefined;
  let system: string | undefined;
  let ca: string | undefined;
  const sigs: string[] = [];
  const extra: { key: string; value: string }[] = [];
  const seen = new Map<string, number>();

  lines.forEach((line, index) => {
    const n = index + 1;
    const bad = (reason: string, cause?: unknown): never => {
      throw new InvalidNarInfoError(n, reason, { cause });
    };
    if (line.length === 0) bad('blank line');
    if (line.includes('\r')) bad('carriage return (narinfo lines end with "\\n" only)');
    const colon = line.indexOf(':');
    if (colon < 0) bad(`expected "Key: value", got ${JSON.stringify(line.slice(0, 80))}`);
    const key = line.slice(0, colon);
    if (!KEY.test(key)) bad(`invalid key ${JSON.stringify(key.slice(0, 80))}`);
    if (line[colon + 1] !== ' ') bad(`expected ": " after ${key}`);
    const value = line.slice(colon + 2);
    if (key !== 'Sig' && seen.has(key) && isKnown(key)) {
      bad(`${key} appears again (first on line ${seen.get(key)})`);
    }
    seen.set(key, n);

    const hash = (v: string) => {
      try {
        const h = Hash.parse(v);
        return h.toNix32String();
      } catch (e) {
        return bad(`${key}: ${(e as Error).message}`, e);
      }
    };
    const size = (v: string) => {
      const num = Number(v);
      if (!DIGITS.test(v) || !Number.isSafeInteger(num))
        bad(`${key} must be a non-negative integer, got ${JSON.stringify(v)}`);
      return num;
    };
    const basename = (v: string) => {
      try {
        return parseStorePathBasename(v, storeDir).basename;
      } catch (e) {
        return bad(`${key}: ${(e as Error).message}`, e);
      }
    };

    switch (key) {
      case 'StorePath':
        try {
          storePath = parseStorePath(value, storeDir).path;
        } catch (e) {
          bad(`StorePath: ${(e as Error).message}`, e);
        }
        break;
      case 'URL':
        url = value;
        break;
      case 'Compression':
        compression = value;
        break;
      case 'FileHash':
        fileHash = hash(value);
        break;
      case 'FileSize':
        fileSize = size(value);
        break;
      case 'NarHash':
        narHash = hash(value);
        break;
      case 'NarSize':
        narSize = size(value);
        break;
      case 'References':
        // Split like Nix's tokenizeString: runs of spaces separate, none yield empty names.
        references = value
          .split(' ')
          .filter((r) => r !== '')
          .map(basename);
        break;
      case 'Deriver':
        if (value !== 'unknown-deriver') deriver = basename(value);
        break;
      case 'System':
        system = value;
        break;
      case 'Sig':
        if (value.length === 0) bad('empty Sig');
        if (!sigs.includes(value)) sigs.push(value);
        break;
      case 'CA':
        ca = value;
        break;
      default:
        extra.push({ key, value });
    }
  });

  const missing = (field: string): never => {
    throw new InvalidNarInfoError(0, `the required field ${field} is missing`);
  };
  if (storePath === undefined) missing('StorePath');
  if (narHash === undefined) missing('NarHash');
  if (url === undefined || url === '') missing('URL');
  if (narSize === undefined) missing('NarSize');
  if (narSize === 0)
    throw new InvalidNarInfoError(seen.get('NarSize') ?? 0, 'NarSize must not be 0');

  const info: NarInfo = {
    storePath: storePath!,
    url: url!,
    compression: compression === undefined || compression === '' ? 'bzip2' : compression,
    narHash: narHash!,
    narSize: narSize!,
    references: references ?? [],
    sigs,
  };
  if (fileHash !== undefined) info.fileHash = fileHash;
  if (fileSize !== undefined) info.fileSize = fileSize;
  if (deriver !== undefined) info.deriver = deriver;
  if (system !== undefined) info.system = system;
  if (ca !== undefined) info.ca = ca;
  if (extra.length > 0) info.extra = extra;
  return info;
}

function isKnown(key: string): boolean {
  return KNOWN.has(key);
}
const KNOWN = new Set([
  'StorePath',
  'URL',
  'Compression',
  'FileHash',
  'FileSize',
  'NarHash',
  'NarSize',
  'References',
  'Deriver',
  'System',
  'Sig',
  'CA',
]);

/** Sorted, deduplicated, by bytes (Nix keeps these in std::set). */
function sortedUnique(items: readonly string[]): string[] {
  return [...new Set(items)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function checkValue(field: string, value: string): string {
  if (value.includes('\n') || value.includes('\r')) {
    throw new NarInfoValueError(
      `narinfo ${field} contains a line break: ${JSON.stringify(value.slice(0, 80))}`,
    );
  }
  return value;
}

/**
 * Format in Nix's order: StorePath, URL, Compression, FileHash, FileSize, NarHash, NarSize,
 * References (always, even empty), Deriver, System, Sig (sorted), CA; unknown fields last.
 */
export function formatNarInfo(info: NarInfo): string {
  const storeDir = parentDir(info.storePath);
  parseStorePath(info.storePath, storeDir);
  if (!info.url) throw new NarInfoValueError('narinfo URL is empty');
  if (!info.compression) {
    throw new NarInfoValueError('narinfo Compression is empty (a missing value would mean bzip2)');
  }
  checkSize('NarSize', info.narSize, false);
  const lines: string[] = [];
  const add = (k: string, v: string) => lines.push(`${k}: ${checkValue(k, v)}\n`);
  add('StorePath', info.storePath);
  add('URL', info.url);
  add('Compression', info.compression);
  if (info.fileHash !== undefined) add('FileHash', Hash.parse(info.fileHash).toNix32String());
  if (info.fileSize !== undefined)
    add('FileSize', String(checkSize('FileSize', info.fileSize, true)));
  add('NarHash', Hash.parse(info.narHash).toNix32String());
  add('NarSize', String(info.narSize));
  const refs = sortedUnique(
    info.references.map((r) => parseStorePathBasename(r, storeDir).basename),
  );
  add('References', refs.join(' '));
  if (info.deriver !== undefined)
    add('Deriver', parseStorePathBasename(info.deriver, storeDir).basename);
  if (info.system !== undefined && info.system !== '') add('System', info.system);
  for (const sig of sortedUnique(info.sigs)) add('Sig', sig);
  if (info.ca !== undefined && info.ca !== '') add('CA', info.ca);
  for (const { key, value } of info.extra ?? []) {
    if (!KEY.test(key) || KNOWN.has(key))
      throw new NarInfoValueError(`invalid extra narinfo key ${JSON.stringify(key)}`);
    add(key, value);
  }
  return lines.join('');
}

function checkSize(field: string, n: number, zeroOk: boolean): number {
  if (!Number.isSafeInteger(n) || n < 0 || (!zeroOk && n === 0)) {
    throw new NarInfoValueError(
      `narinfo ${field} must be a ${zeroOk ? 'non-negative' : 'positive'} integer, got ${n}`,
    );
  }
  return n;
}

function parentDir(path: string): string {
  const i = path.lastIndexOf('/');
  return i > 0 ? path.slice(0, i) : DEFAULT_STORE_DIR;
}

/**
 * The string Nix signs: `1;<store path>;<sha256:nix32 narHash>;<narSize>;<references as
 * full paths, sorted, comma-joined>`. Deriver, CA, URL and compression are not part of it.
 * `storeDir` defaults to the directory of `info.storePath`.
 */
export function narInfoFingerprint(
  info: Pick<NarInfo, 'storePath' | 'narHash' | 'narSize' | 'references'>,
  storeDir: string = parentDir(info.storePath),
): string {
  const path = parseStorePath(info.storePath, storeDir).path;
  if (!Number.isSafeInteger(info.narSize) || info.narSize <= 0) {
    throw new NarInfoValueError(
      `cannot fingerprint ${path}: its NarSize is not known (got ${info.narSize})`,
    );
  }
  const refs = sortedUnique(info.references.map((r) => parseStorePathBasename(r, storeDir).path));
  return `1;${path};${Hash.parse(info.narHash).toNix32String()};${info.narSize};${refs.join(',')}`;
}
