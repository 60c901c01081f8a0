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
