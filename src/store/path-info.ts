/**
 * Path info in Loft's canonical form: narHash as `sha256:<nix32>`, references as full
 * paths sorted, absent strings as undefined. Converted from the daemon's form here, at the
 * edge, so nothing above sees hex hashes.
 */
import type { DaemonPathInfo } from '../daemon/ops.js';
import { Hash } from '../nix/hash.js';

export interface PathInfo {
  path: string;
  deriver: string | undefined;
  /** `sha256:<52-char nix32>`. */
  narHash: string;
  narSize: number;
  /** Full store paths, sorted; a self-reference is included. */
  references: string[];
  /** Seconds since the epoch. */
  registrationTime: number;
  /** Built locally (not substituted or copied). */
  ultimate: boolean;
  sigs: string[];
  ca: string | undefined;
}

export function fromDaemonPathInfo(d: DaemonPathInfo): PathInfo {
  return {
    path: d.path,
    deriver: d.deriver === '' ? undefined : d.deriver,
    narHash: Hash.parse(d.narHashHex, 'sha256').toNix32String(),
    narSize: d.narSize,
    references: [...d.references].sort(),
    registrationTime: d.registrationTime,
    ultimate: d.ultimate,
    sigs: [...d.sigs],
    ca: d.ca === '' ? undefined : d.ca,
  };
}

/**
 * Path info as the local index keeps it (one JSON text per path), so a later push can walk
 * the closure of cached paths without the daemon. The path itself is the row's key.
 */
export function pathInfoToJson(info: PathInfo): string {
  const { path: _path, ...rest } = info;
  return JSON.stringify(rest);
}

/**
 * The inverse of pathInfoToJson for `path`, or undefined when the text is not what it
 * wrote (an older or damaged row): the caller then asks the daemon, as without it.
 */
export function pathInfoFromJson(
  path: string,
  text: string,
  storeDir: string,
): PathInfo | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  const prefix = `${storeDir}/`;
  const isPath = (x: unknown) => typeof x === 'string' && x.startsWith(prefix);
  const optString = (x: unknown) => x === undefined || typeof x === 'string';
  if (
    typeof o.narHash !== 'string' ||
    !o.narHash.startsWith('sha256:') ||
    !Number.isSafeInteger(o.narSize) ||
    !Number.isSafeInteger(o.registrationTime) ||
    typeof o.ultimate !== 'boolean' ||
    !Array.isArray(o.references) ||
    !o.references.every(isPath) ||
    !Array.isArray(o.sigs) ||
    !o.sigs.every((s) => typeof s === 'string') ||
    !optString(o.deriver) ||
    !optString(o.ca)
  ) {
    return undefined;
  }
  return {
    path,
    deriver: o.deriver as string | undefined,
    narHash: o.narHash,
    narSize: o.narSize as number,
    references: o.references as string[],
    registrationTime: o.registrationTime as number,
    ultimate: o.ultimate,
    sigs: o.sigs as string[],
    ca: o.ca as string | undefined,
  };
}
