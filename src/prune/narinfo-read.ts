/**
 * What pruning needs from a narinfo: the hash parts it references and the key of its NAR.
 * Pure. A narinfo that does not parse is salvaged line by line, so whatever it names can
 * still be kept: prune never deletes what it cannot read, nor what that might need.
 */
import { parseNarInfo } from '../nix/narinfo.js';
import { HASH_PART_LENGTH, isHashPart } from '../nix/store-path.js';
import { describeError } from '../util/errors.js';
import { keyOfNarUrl } from '../storage/keys.js';

export interface NarInfoRead {
  /** Hash parts of the references, without a self-reference, deduplicated. */
  references: string[];
  /** The object key of the NAR, when the URL is a plain relative key. */
  narKey: string | undefined;
  /** The URL when it is present but not a key we can follow (prune then keeps every NAR). */
  unresolvedUrl?: string;
  /** Set when the narinfo did not parse: why. Such a narinfo is kept, with what it names. */
  problem?: string;
}

function hashParts(basenames: readonly string[], self: string | undefined): string[] {
  const out = new Set<string>();
  for (const b of basenames) {
    const hp = b.slice(0, HASH_PART_LENGTH);
    if (b[HASH_PART_LENGTH] === '-' && isHashPart(hp) && hp !== self) out.add(hp);
  }
  return [...out];
}

function resolveUrl(url: string): { narKey: string | undefined; unresolvedUrl?: string } {
  try {
    return { narKey: keyOfNarUrl(url) };
  } catch {
    return { narKey: undefined, unresolvedUrl: url };
  }
}

/**
 * Read a narinfo's text. `selfHashPart` is the hash part of its key, so a self-reference is
 * not mistaken for a dependency.
 */
export function readNarInfo(text: string, selfHashPart: string, storeDir?: string): NarInfoRead {
  try {
    const info = parseNarInfo(text, storeDir === undefined ? {} : { storeDir });
    return { references: hashParts(info.references, selfHashPart), ...resolveUrl(info.url) };
  } catch (e) {
    // Salvage: Nix cannot use this narinfo, but a fixed version of it would need the same
    // references and NAR, so keep whatever the lines still name.
    const url = /^URL: (.+)$/m.exec(text)?.[1];
    const refs = /^References: (.*)$/m.exec(text)?.[1];
    const problem = describeError(e).split('\n')[0]!;
    const read: NarInfoRead = {
      references: hashParts((refs ?? '').split(' '), selfHashPart),
      narKey: undefined,
      problem,
    };
    if (url !== undefined) Object.assign(read, resolveUrl(url.trim()));
    return read;
  }
}
