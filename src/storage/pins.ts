/**
 * Pins: store paths (with their closures) that prune never deletes, kept in the bucket so
 * every machine's prune honours them. One object per name, so a new pin of a name replaces
 * the old one in a single write:
 *
 *   loft/pins/<name>.json   {"type":"loft-pin","version":1,"name":...,"storePath":...,"created":...}
 */
import { LoftError } from '../util/errors.js';
import { parseTypedJson, readParsedObjects } from './coordination.js';
import type { BlobStore } from './port.js';

export const PIN_PREFIX = 'loft/pins/';
const PIN_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$/;
const STORE_PATH_BASENAME = /^[0-9abcdfghijklmnpqrsvwxyz]{32}-[A-Za-z0-9+\-._?=]+$/;

export interface Pin {
  name: string;
  storePath: string;
  /** Hash part of `storePath`. */
  hashPart: string;
  created: string;
}

export interface StoredPin extends Pin {
  key: string;
  lastModified: Date;
}

export class BadPinNameError extends LoftError {
  constructor(name: string) {
    super(
      'PIN_BAD_NAME',
      'usage',
      `pin name ${JSON.stringify(name)} is not usable: expected 1-100 letters, digits, ".", "_", "+" or "-", starting with a letter or digit`,
      { hint: 'choose a name such as "production" or "release-2026-12"' },
    );
  }
}

export function checkPinName(name: string): string {
  if (!PIN_NAME.test(name)) throw new BadPinNameError(name);
  return name;
}

export function pinKey(name: string): string {
  return `${PIN_PREFIX}${checkPinName(name)}.json`;
}

/** Parse a stored pin; a string saying what is wrong when it is malformed. */
export function parsePin(text: string, key: string): Pin | string {
  const o = parseTypedJson(text, 'loft-pin');
  if (typeof o === 'string') return o;
  if (typeof o.name !== 'string' || `${PIN_PREFIX}${o.name}.json` !== key) {
    return `"name" is ${JSON.stringify(o.name)}, which does not match the key`;
  }
  const sp = o.storePath;
  const slash = typeof sp === 'string' ? sp.lastIndexOf('/') : -1;
  if (typeof sp !== 'string' || slash <= 0 || !STORE_PATH_BASENAME.test(sp.slice(slash + 1))) {
    return `"storePath" is ${JSON.stringify(sp)}, not a store path`;
  }
  return {
    name: o.name,
    storePath: sp,
    hashPart: sp.slice(slash + 1, slash + 33),
    created: typeof o.created === 'string' ? o.created : '',
  };
}

export function formatPin(p: { name: string; storePath: string; created: Date }): string {
  return `${JSON.stringify({
    type: 'loft-pin',
    version: 1,
    name: p.name,
    storePath: p.storePath,
    created: p.created.toISOString(),
  })}\n`;
}

export interface PinReading {
  pins: StoredPin[];
  malformed: { key: string; problem: string }[];
}

/** Every pin in the bucket; malformed ones are reported, not thrown. */
export async function readPins(blobs: BlobStore): Promise<PinReading> {
  const { objects, malformed } = await readParsedObjects(
    blobs,
    PIN_PREFIX,
    (text, key, lastModified): StoredPin | string => {
      const p = parsePin(text, key);
      return typeof p === 'string' ? p : { ...p, key, lastModified };
    },
  );
  return { pins: objects.sort((a, b) => (a.name < b.name ? -1 : 1)), malformed };
}
