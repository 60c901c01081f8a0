/**
 * Realisations: which store path a content-addressed derivation's output became. Pure.
 *
 * As Nix 2.8 writes them (src/libstore/realisation.cc), to `realisations/<id>.doi` in a
 * binary cache and as strings on the daemon's wire:
 *
 *   {"dependentRealisations":{"<id>":"<basename>",...},"id":"sha256:<hex>!out",
 *    "outPath":"<basename>","signatures":["name:base64",...]}
 *
 * keys in that (sorted) order, no spaces, output paths as basenames; the id is the
 * derivation's hash modulo (hex, `sha256:` prefix), `!`, the output name. The signed
 * fingerprint is the same JSON without `signatures`.
 */
import { InvalidRealisationError } from './errors.js';
import type { SecretKey } from './signing.js';

export interface Realisation {
  /** `sha256:<hex>!<output name>` */
  id: string;
  /** The output's store path basename (`<hash>-<name>`). */
  outPath: string;
  signatures: string[];
  /** Realisations of input derivations' outputs this one references: id -> basename. */
  dependentRealisations: Record<string, string>;
}

/** The id of output `outputName` of a derivation whose hash modulo is `hashHex`. */
export function drvOutputId(hashHex: string, outputName: string): string {
  return `sha256:${hashHex}!${outputName}`;
}

const ID = /^sha256:[0-9a-f]{64}![^/]+$/;

/** The cache key of a realisation. */
export function realisationKey(id: string): string {
  return `realisations/${id}.doi`;
}

function sortedObject(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** The JSON text Nix writes (signatures sorted and unique, as Nix keeps them in a set). */
export function formatRealisation(r: Realisation): string {
  return JSON.stringify({
    dependentRealisations: sortedObject(r.dependentRealisations),
    id: r.id,
    outPath: r.outPath,
    signatures: [...new Set(r.signatures)].sort(),
  });
}

/** What a signature covers: the JSON without `signatures`. */
export function realisationFingerprint(r: Realisation): string {
  return JSON.stringify({
    dependentRealisations: sortedObject(r.dependentRealisations),
    id: r.id,
    outPath: r.outPath,
  });
}

/** `r` with `key`'s signature added (an existing signature by the same key is replaced). */
export function signRealisation(r: Realisation, key: SecretKey): Realisation {
  const others = r.signatures.filter((s) => !s.startsWith(`${key.name}:`));
  return { ...r, signatures: [...others, key.sign(realisationFingerprint(r))].sort() };
}

/** Parse a realisation's JSON (a `.doi` file, or the daemon's reply). */
export function parseRealisation(text: string): Realisation {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new InvalidRealisationError(text, `not JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null) throw new InvalidRealisationError(text, 'not an object');
  const o = v as Record<string, unknown>;
  if (typeof o.id !== 'string' || !ID.test(o.id)) {
    throw new InvalidRealisationError(text, 'id is not "sha256:<64 hex>!<output>"');
  }
  if (typeof o.outPath !== 'string' || o.outPath.length === 0 || o.outPath.includes('/')) {
    throw new InvalidRealisationError(text, 'outPath is not a store path basename');
  }
  const sigs = o.signatures ?? [];
  if (!Array.isArray(sigs) || !sigs.every((s) => typeof s === 'string')) {
    throw new InvalidRealisationError(text, 'signatures is not a list of strings');
  }
  const deps = o.dependentRealisations ?? {};
  if (
    typeof deps !== 'object' ||
    deps === null ||
    Array.isArray(deps) ||
    !Object.entries(deps).every(([k, p]) => ID.test(k) && typeof p === 'string')
  ) {
    throw new InvalidRealisationError(text, 'dependentRealisations is not an object of id -> path');
  }
  return {
    id: o.id,
    outPath: o.outPath,
    signatures: sigs as string[],
    dependentRealisations: deps as Record<string, string>,
  };
}
