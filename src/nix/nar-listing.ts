/**
 * `.ls` NAR listings, `{"version":1,"root":NODE}`, built from parser events and written as
 * Nix 2.8 writes them (compact JSON, keys in Nix's order, names escaped by Nix's rules:
 * `"` `\` \n \r \t escaped, other control bytes as \u00XX, every other byte raw), so a
 * listing we make is byte-identical to one `nix copy ...?write-nar-listing=true` makes.
 */
import { NarListingIncompleteError } from './errors.js';
import { parseNar, type NarFileInfo, type NarPath, type NarVisitor } from './nar-parse.js';

const HEX = '0123456789abcdef';

/** A JSON string of raw bytes, escaped exactly as Nix's toJSON does. */
export function nixJsonString(bytes: Uint8Array): Buffer {
  let extra = 2;
  for (const c of bytes)
    if (c < 0x20 || c === 0x22 || c === 0x5c)
      extra += c < 0x20 && c !== 10 && c !== 13 && c !== 9 ? 5 : 1;
  const out = Buffer.allocUnsafe(bytes.length + extra);
  let k = 0;
  out[k++] = 0x22;
  for (const c of bytes) {
    if (c === 0x22 || c === 0x5c) {
      out[k++] = 0x5c;
      out[k++] = c;
    } else if (c === 10) {
      out[k++] = 0x5c;
      out[k++] = 0x6e;
    } else if (c === 13) {
      out[k++] = 0x5c;
      out[k++] = 0x72;
    } else if (c === 9) {
      out[k++] = 0x5c;
      out[k++] = 0x74;
    } else if (c < 0x20) {
      out.write(`\\u00${HEX[c >> 4]}${HEX[c & 15]}`, k, 'latin1');
      k += 6;
    } else {
      out[k++] = c;
    }
  }
  out[k++] = 0x22;
  return out;
}

/**
 * A NarVisitor that writes the listing as the NAR is parsed. Directory entries arrive in
 * NAR order, which is the byte order Nix's listing uses too, so no tree is kept.
 */
export class NarListingBuilder implements NarVisitor {
  private readonly parts: Buffer[] = [];
  /** Per open directory: has an entry been written yet? */
  private readonly first: boolean[] = [];
  private finished = false;

  constructor() {
    this.parts.push(Buffer.from('{"version":1,"root":'));
  }

  private key(path: NarPath): void {
    if (path.length === 0) return;
    const depth = path.length - 1;
    if (this.first[depth]) this.first[depth] = false;
    else this.parts.push(Buffer.from(','));
    this.parts.push(nixJsonString(path[path.length - 1]!), Buffer.from(':'));
  }

  directory(path: NarPath): void {
    this.key(path);
    this.parts.push(Buffer.from('{"type":"directory","entries":{'));
    this.first[path.length] = true;
  }

  directoryEnd(path: NarPath): void {
    this.parts.push(Buffer.from('}}'));
    this.first.length = path.length;
    if (path.length === 0) this.finished = true;
  }

  file(path: NarPath, info: NarFileInfo): void {
    this.key(path);
    let s = `{"type":"regular","size":${info.size}`;
    if (info.executable) s += ',"executable":true';
    // Nix omits a zero offset; only a file at the very start of a NAR could have one.
    if (info.narOffset !== 0) s += `,"narOffset":${info.narOffset}`;
    this.parts.push(Buffer.from(s + '}'));
    if (path.length === 0) this.finished = true;
  }

  symlink(path: NarPath, target: Buffer): void {
    this.key(path);
    this.parts.push(
      Buffer.from('{"type":"symlink","target":'),
      nixJsonString(target),
      Buffer.from('}'),
    );
    if (path.length === 0) this.finished = true;
  }

  /** The listing's bytes; call after the parser is done. */
  toBuffer(): Buffer {
    if (!this.finished) throw new NarListingIncompleteError();
    return Buffer.concat([...this.parts, Buffer.from('}')]);
  }
}

/** The `.ls` listing of a NAR held in memory. */
export function narListing(nar: Uint8Array): Buffer {
  const builder = new NarListingBuilder();
  parseNar(nar, { visitor: builder });
  return builder.toBuffer();
}
