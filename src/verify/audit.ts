/**
 * The audit behind `--verify`: a bucket's listing and the narinfos read from it, checked
 * against Nix's rules for a usable cache. Pure: the driver (verify.ts) lists and fetches.
 *
 * Every narinfo must parse, describe the store path its key names, carry a signature by a
 * trusted key, point at a NAR that exists with its FileSize, and every reference must have
 * a narinfo. `deepFindings` adds what only the NAR's bytes can tell.
 */
import { Hash } from '../nix/hash.js';
import { parseNarInfo, type NarInfo } from '../nix/narinfo.js';
import type { PublicKey } from '../nix/signing.js';
import { validNarInfoSigners } from '../nix/signing.js';
import { parseCacheInfo } from '../nix/cache-info.js';
import { HASH_PART_LENGTH, storePathHashPart } from '../nix/store-path.js';
import { describeError } from '../util/errors.js';
import {
  CACHE_INFO_KEY,
  hashPartOfListingKey,
  hashPartOfNarInfoKey,
  isNarKey,
  keyOfNarUrl,
  narInfoKey,
} from '../storage/keys.js';
import type { Finding } from './findings.js';

export interface AuditInput {
  /** Every object of the bucket (a recursive listing), key and size. */
  objects: readonly { key: string; size: number }[];
  /** nix-cache-info's text, or undefined when there is none. */
  cacheInfo: string | undefined;
  /** The narinfos' texts by key; a key missing here vanished between listing and reading. */
  narInfos: ReadonlyMap<string, string>;
  /** Signatures by any of these keys are trusted. */
  trustedKeys: readonly PublicKey[];
  storeDir: string;
}

/** A narinfo that parsed and whose NAR exists: deep verify reads the NAR. */
export interface SoundNarInfo {
  key: string;
  hashPart: string;
  info: NarInfo;
  narKey: string;
}

export interface AuditResult {
  narInfos: number;
  nars: number;
  findings: Finding[];
  /** Narinfos whose NAR is present, for the deep check. */
  sound: SoundNarInfo[];
}

const STORE_PATH_LINE = /^StorePath: (.+)$/m;

export function audit(input: AuditInput): AuditResult {
  const findings: Finding[] = [];
  const sizes = new Map<string, number>();
  for (const o of input.objects) sizes.set(o.key, o.size);
  const narInfoKeys = new Set(input.objects.map((o) => o.key).filter((k) => isNarInfoKeyOf(k)));

  checkCacheInfo(input, sizes, findings);

  const named = new Set<string>();
  const sound: SoundNarInfo[] = [];
  for (const key of [...narInfoKeys].sort()) {
    const text = input.narInfos.get(key);
    if (text === undefined) continue;
    const hashPart = hashPartOfNarInfoKey(key)!;
    let info: NarInfo;
    try {
      info = parseNarInfo(text, { storeDir: input.storeDir });
    } catch (e) {
      const salvaged = STORE_PATH_LINE.exec(text)?.[1]?.trim();
      const url = /^URL: (.+)$/m.exec(text)?.[1]?.trim();
      if (url !== undefined) named.add(url);
      findings.push({
        kind: 'unparsable-narinfo',
        key,
        hashPart,
        detail: describeError(e).split('\n')[0]!,
        ...(salvaged !== undefined && salvaged.startsWith(`${input.storeDir}/${hashPart}-`)
          ? { storePath: salvaged }
          : {}),
      });
      continue;
    }
    named.add(info.url);
    const about = { key, hashPart, storePath: info.storePath };
    if (storePathHashPart(info.storePath, input.storeDir) !== hashPart) {
      findings.push({
        kind: 'wrong-store-path',
        ...about,
        detail: `the key names ${hashPart} but StorePath is ${info.storePath}`,
      });
      // Its other fields describe another path; checking them against this key means nothing.
      continue;
    }
    if (validNarInfoSigners(info, input.trustedKeys, input.storeDir).length === 0) {
      const names = info.sigs.map((s) => s.slice(0, Math.max(0, s.indexOf(':'))));
      findings.push({
        kind: 'untrusted-signature',
        ...about,
        detail:
          info.sigs.length === 0
            ? 'no signature'
            : `no valid signature by a trusted key (signed by: ${names.join(', ')})`,
      });
    }
    let narKey: string | undefined;
    try {
      narKey = keyOfNarUrl(info.url);
    } catch {
      findings.push({
        kind: 'missing-nar',
        ...about,
        detail: `URL ${JSON.stringify(info.url)} is not an object key of this bucket`,
      });
    }
    if (narKey !== undefined) {
      const size = sizes.get(narKey);
      if (size === undefined) {
        findings.push({
          kind: 'missing-nar',
          ...about,
          missingKey: narKey,
          detail: `NAR ${narKey} does not exist`,
        });
      } else if (info.fileSize !== undefined && size !== info.fileSize) {
        findings.push({
          kind: 'nar-size',
          ...about,
          detail: `NAR ${narKey} has ${size} bytes, FileSize says ${info.fileSize}`,
        });
      }
    }
    for (const ref of info.references) {
      const refHash = ref.slice(0, HASH_PART_LENGTH);
      if (refHash === hashPart || narInfoKeys.has(narInfoKey(refHash))) continue;
      findings.push({
        kind: 'missing-reference',
        ...about,
        missingKey: narInfoKey(refHash),
        reference: `${input.storeDir}/${ref}`,
        detail: `reference ${input.storeDir}/${ref} has no narinfo`,
      });
    }
    // Whatever else is wrong, a NAR that exists can be read and checked by its hashes.
    if (narKey !== undefined && sizes.has(narKey)) sound.push({ key, hashPart, info, narKey });
  }

  let nars = 0;
  for (const o of input.objects) {
    if (isNarKey(o.key)) {
      nars++;
      if (!named.has(o.key)) {
        findings.push({ kind: 'orphan-nar', key: o.key, detail: 'no narinfo names this NAR' });
      }
    } else if (
      o.key !== CACHE_INFO_KEY &&
      !isNarInfoKeyOf(o.key) &&
      hashPartOfListingKey(o.key) === undefined
    ) {
      findings.push({
        kind: 'foreign-object',
        key: o.key,
        detail: `not part of a Nix binary cache (${o.size} bytes); left alone`,
      });
    }
  }
  return { narInfos: narInfoKeys.size, nars, findings, sound };
}

function isNarInfoKeyOf(key: string): boolean {
  return hashPartOfNarInfoKey(key) !== undefined;
}

function checkCacheInfo(input: AuditInput, sizes: Map<string, number>, out: Finding[]): void {
  if (input.cacheInfo === undefined || !sizes.has(CACHE_INFO_KEY)) {
    out.push({ kind: 'cache-info', key: CACHE_INFO_KEY, detail: 'missing' });
    return;
  }
  const storeDir = parseCacheInfo(input.cacheInfo).storeDir;
  if (storeDir !== input.storeDir) {
    out.push({
      kind: 'cache-info',
      key: CACHE_INFO_KEY,
      detail:
        storeDir === undefined
          ? 'has no StoreDir line'
          : `StoreDir is ${storeDir}, this store is ${input.storeDir}`,
    });
  }
}

/** What a NAR's bytes measured: the compressed file and the NAR it decompressed to. */
export interface NarMeasure {
  fileSha256: Buffer;
  fileSize: number;
  narSha256: Buffer;
  narSize: number;
}

/** The deep check of one NAR against its narinfo. */
export function deepFindings(n: SoundNarInfo, m: NarMeasure): Finding[] {
  const out: Finding[] = [];
  const about = { key: n.key, hashPart: n.hashPart, storePath: n.info.storePath };
  const fileHash = new Hash('sha256', m.fileSha256).toNix32String();
  if (n.info.fileHash !== undefined && n.info.fileHash !== fileHash) {
    out.push({
      kind: 'file-hash',
      ...about,
      detail: `NAR ${n.narKey} hashes to ${fileHash}, FileHash says ${n.info.fileHash}`,
    });
  }
  const narHash = new Hash('sha256', m.narSha256).toNix32String();
  if (narHash !== n.info.narHash || m.narSize !== n.info.narSize) {
    out.push({
      kind: 'nar-hash',
      ...about,
      detail:
        `NAR ${n.narKey} decompresses to ${m.narSize} bytes with ${narHash}; ` +
        `the narinfo says ${n.info.narSize} bytes with ${n.info.narHash}`,
    });
  }
  return out;
}
