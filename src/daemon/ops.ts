/**
 * The operations this client sends, each as a request writer and a reply reader. Paths are
 * validated here, before anything is written: the daemon parses a request's arguments
 * before it can report errors, so a malformed path would make it drop the connection.
 */
import { isHashPart, parseStorePath } from '../nix/store-path.js';
import { NIX32_ALPHABET } from '../nix/nixbase32.js';
import { InvalidStorePathError } from '../nix/errors.js';
import { parseRealisation, type Realisation } from '../nix/realisation.js';
import { LIMITS, MINOR, Op, protocolMinor, type ProtocolVersion } from './constants.js';
import { DaemonArgumentError, DaemonProtocolError } from './errors.js';
import type { Cursor } from './cursor.js';
import type { WireReader } from './wire-reader.js';
import type { WireWriter } from './wire-writer.js';

export interface OpSpec<T> {
  /** Operation name, for messages. */
  readonly name: string;
  /** Safe to send again on a new connection if the first one broke. */
  readonly idempotent: boolean;
  write(w: WireWriter, version: ProtocolVersion): void;
  /**
   * Reads the reply: `readSync` from buffered bytes (small replies; throws NeedMore when
   * incomplete and is tried again), or `read` asynchronously (large or streamed replies).
   */
  readSync?(c: Cursor, version: ProtocolVersion): T;
  read?(r: WireReader, version: ProtocolVersion): Promise<T>;
}

/** Path info as the daemon sends it (hex narHash, "" for absent strings). */
export interface DaemonPathInfo {
  path: string;
  deriver: string;
  narHashHex: string;
  references: string[];
  registrationTime: number;
  narSize: number;
  ultimate: boolean;
  sigs: string[];
  ca: string;
}

function checkPath(path: string, storeDir: string): string {
  return parseStorePath(path, storeDir).path;
}

function checkHashPart(hashPart: string): string {
  if (!isHashPart(hashPart)) {
    throw new InvalidStorePathError(
      hashPart,
      'hash-part',
      `a hash part is 32 nix32 characters (${NIX32_ALPHABET})`,
    );
  }
  return hashPart;
}

const readPathSet = (r: WireReader, what: string) => r.strings(LIMITS.pathSet, LIMITS.path, what);

function readOne(c: Cursor, op: string): void {
  const v = c.u64(`${op} result`);
  if (v !== 1) throw new DaemonProtocolError(`${op} should answer 1, got ${v}`);
}

export function isValidPathOp(path: string, storeDir: string): OpSpec<boolean> {
  checkPath(path, storeDir);
  return {
    name: 'IsValidPath',
    idempotent: true,
    write: (w) => void w.u64(Op.IsValidPath).string(path),
    readSync: (c) => c.bool('IsValidPath result'),
  };
}

export function queryValidPathsOp(paths: readonly string[], storeDir: string): OpSpec<string[]> {
  for (const p of paths) checkPath(p, storeDir);
  return {
    name: 'QueryValidPaths',
    idempotent: true,
    write: (w, v) => {
      w.u64(Op.QueryValidPaths).strings(paths);
      if (protocolMinor(v) >= MINOR.validPathsSubstitute) w.bool(false);
    },
    read: (r) => readPathSet(r, 'valid paths'),
  };
}

export function queryAllValidPathsOp(): OpSpec<string[]> {
  return {
    name: 'QueryAllValidPaths',
    idempotent: true,
    write: (w) => void w.u64(Op.QueryAllValidPaths),
    read: (r) => readPathSet(r, 'all valid paths'),
  };
}

/** undefined when the path is not valid. */
export function queryPathInfoOp(
  path: string,
  storeDir: string,
): OpSpec<DaemonPathInfo | undefined> {
  checkPath(path, storeDir);
  return {
    name: 'QueryPathInfo',
    idempotent: true,
    write: (w) => void w.u64(Op.QueryPathInfo).string(path),
    readSync: (c) => {
      if (!c.bool('path info valid flag')) return undefined;
      const deriver = c.string(LIMITS.path, 'deriver');
      const narHashHex = c.string(LIMITS.hash, 'narHash');
      const references = c.strings(LIMITS.references, LIMITS.path, 'references');
      const registrationTime = c.u64('registration time');
      const narSize = c.u64('narSize');
      const ultimate = c.bool('ultimate flag');
      const sigs = c.strings(LIMITS.sigs, LIMITS.sig, 'signatures');
      const ca = c.string(LIMITS.ca, 'content address');
      return {
        path,
        deriver,
        narHashHex,
        references,
        registrationTime,
        narSize,
        ultimate,
        sigs,
        ca,
      };
    },
  };
}

/** The full path whose hash part is `hashPart`, or undefined. */
export function queryPathFromHashPartOp(hashPart: string): OpSpec<string | undefined> {
  checkHashPart(hashPart);
  return {
    name: 'QueryPathFromHashPart',
    idempotent: true,
    write: (w) => void w.u64(Op.QueryPathFromHashPart).string(hashPart),
    readSync: (c) => {
      const p = c.string(LIMITS.path, 'path from hash part');
      return p === '' ? undefined : p;
    },
  };
}

/** Keep `path` from garbage collection while this connection lives. */
export function addTempRootOp(path: string, storeDir: string): OpSpec<void> {
  checkPath(path, storeDir);
  return {
    name: 'AddTempRoot',
    idempotent: true,
    write: (w) => void w.u64(Op.AddTempRoot).string(path),
    readSync: (c) => readOne(c, 'AddTempRoot'),
  };
}

/** Needs a trusted connection (the daemon refuses others with an error). */
export function addSignaturesOp(
  path: string,
  sigs: readonly string[],
  storeDir: string,
): OpSpec<void> {
  checkPath(path, storeDir);
  for (const s of sigs) {
    if (s.length === 0 || s.length > LIMITS.sig) {
      throw new DaemonArgumentError(
        'AddSignatures',
        `a signature must be 1 to ${LIMITS.sig} characters, got ${s.length}`,
      );
    }
  }
  return {
    name: 'AddSignatures',
    idempotent: true,
    write: (w) => void w.u64(Op.AddSignatures).string(path).strings(sigs),
    readSync: (c) => readOne(c, 'AddSignatures'),
  };
}

/**
 * The realisation of one derivation output (`sha256:<hex>!<output>`), or undefined when the
 * daemon has none. From 1.31 the daemon sends it as JSON (with signatures and dependent
 * realisations); from 1.27 only the output path, so the realisation has neither. Below
 * 1.27 the operation does not exist: ask `supportsRealisations` first. A daemon without
 * `ca-derivations` may drop the connection instead of answering (Nix 2.8 does).
 */
export function queryRealisationOp(id: string): OpSpec<Realisation | undefined> {
  if (id.length === 0 || id.length > LIMITS.realisationId || !id.includes('!')) {
    throw new DaemonArgumentError(
      'QueryRealisation',
      `not a derivation output id: ${JSON.stringify(id)}`,
    );
  }
  return {
    name: 'QueryRealisation',
    // Never sent again on a new connection: a Nix 2.8 daemon without ca-derivations
    // aborts its worker on this operation (an assertion in its SQLite code), every time.
    idempotent: false,
    write: (w) => void w.u64(Op.QueryRealisation).string(id),
    readSync: (c, v) => {
      if (protocolMinor(v) >= MINOR.realisationJson) {
        const [json] = c.strings(1, LIMITS.realisation, 'realisations');
        return json === undefined ? undefined : parseRealisation(json);
      }
      const [path] = c.strings(1, LIMITS.path, 'realisation output paths');
      if (path === undefined) return undefined;
      const outPath = path.slice(path.lastIndexOf('/') + 1);
      return { id, outPath, signatures: [], dependentRealisations: {} };
    },
  };
}

/** Whether a daemon speaking `version` has QueryRealisation. */
export function supportsRealisations(version: ProtocolVersion): boolean {
  return protocolMinor(version) >= MINOR.queryRealisation;
}
