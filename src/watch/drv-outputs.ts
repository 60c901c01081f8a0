/**
 * Output paths of a derivation, read from its `.drv` file (ATerm:
 * `Derive([("out","/nix/store/...-x","",""),...],...)`). Pure.
 *
 * Why: Nix 2.8.0 runs `post-build-hook` with an empty `$OUT_PATHS` (fixed in 2.8.1 by
 * NixOS/nix commit 6e7bd2e0b0, "Fix passing $OUT_PATHS to the post-build hook"); `$DRV_PATH`
 * is right, and an input-addressed derivation names its outputs. Content-addressed
 * derivations have empty paths there; they are left to the store watcher.
 */

export class DrvParseError extends Error {}

/** Read one ATerm string literal starting at `i` (a `"`); returns its value and the next index. */
function readString(text: string, i: number): [string, number] {
  if (text[i] !== '"') throw new DrvParseError(`expected a string at offset ${i}`);
  let out = '';
  for (let j = i + 1; j < text.length; j++) {
    const c = text[j]!;
    if (c === '"') return [out, j + 1];
    if (c === '\\') {
      const n = text[++j];
      out += n === 'n' ? '\n' : n === 't' ? '\t' : n === 'r' ? '\r' : (n ?? '');
    } else out += c;
  }
  throw new DrvParseError('unterminated string');
}

function expect(text: string, i: number, lit: string): number {
  if (!text.startsWith(lit, i)) throw new DrvParseError(`expected ${lit} at offset ${i}`);
  return i + lit.length;
}

/** The non-empty output paths of a derivation, by output name, in file order. */
export function derivationOutputs(text: string): { name: string; path: string }[] {
  let i = expect(text, 0, 'Derive([');
  const out: { name: string; path: string }[] = [];
  for (let n = 0; text[i] !== ']'; n++) {
    if (i >= text.length) throw new DrvParseError('unterminated output list');
    if (n > 0) i = expect(text, i, ',');
    i = expect(text, i, '(');
    const [name, a] = readString(text, i);
    const [path, b] = readString(text, expect(text, a, ','));
    const [, c] = readString(text, expect(text, b, ','));
    const [, d] = readString(text, expect(text, c, ','));
    i = expect(text, d, ')');
    if (path !== '') out.push({ name, path });
  }
  return out;
}
