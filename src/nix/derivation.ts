/**
 * Store derivations (`.drv` files) in Nix's ATerm form: parse and print. Pure.
 *
 *   Derive([outputs],[input drvs],[input sources],"system","builder",[args],[env])
 *   output    = ("name","path","hashAlgo","hash")   (floating CA: path and hash "")
 *   input drv = ("/nix/store/...drv",["out",...])
 *
 * Strings are quoted with `\"`, `\\`, `\n`, `\r` and `\t` escaped. `printDerivation` is
 * Nix's `Derivation::unparse`, including its two variations for hashing (hash-modulo.ts):
 * output paths masked, and input derivations replaced by their hashes.
 */
import { DerivationParseError } from './errors.js';

export interface DerivationOutput {
  /** "" for a floating content-addressed or deferred output. */
  path: string;
  /** "" (input-addressed), "r:sha256", "sha256", ... */
  hashAlgo: string;
  /** Hex digest of a fixed output; "" otherwise. */
  hash: string;
}

export interface Derivation {
  /** By output name, in the file's order (Nix's: sorted). */
  outputs: Map<string, DerivationOutput>;
  /** Input derivation path -> the output names used. */
  inputDrvs: Map<string, string[]>;
  inputSrcs: string[];
  system: string;
  builder: string;
  args: string[];
  env: Map<string, string>;
}

/** Parse the text of a `.drv` file; `source` names it in errors. */
export function parseDerivation(text: string, source: string): Derivation {
  const p = new AtermReader(text, source);
  p.literal('Derive(');
  const outputs = new Map<string, DerivationOutput>();
  p.list(() => {
    p.literal('(');
    const name = p.string();
    p.literal(',');
    const path = p.string();
    p.literal(',');
    const hashAlgo = p.string();
    p.literal(',');
    const hash = p.string();
    p.literal(')');
    outputs.set(name, { path, hashAlgo, hash });
  });
  p.literal(',');
  const inputDrvs = new Map<string, string[]>();
  p.list(() => {
    p.literal('(');
    const path = p.string();
    p.literal(',');
    const names: string[] = [];
    p.list(() => names.push(p.string()));
    p.literal(')');
    inputDrvs.set(path, names);
  });
  p.literal(',');
  const inputSrcs: string[] = [];
  p.list(() => inputSrcs.push(p.string()));
  p.literal(',');
  const system = p.string();
  p.literal(',');
  const builder = p.string();
  p.literal(',');
  const args: string[] = [];
  p.list(() => args.push(p.string()));
  p.literal(',');
  const env = new Map<string, string>();
  p.list(() => {
    p.literal('(');
    const k = p.string();
    p.literal(',');
    const v = p.string();
    p.literal(')');
    env.set(k, v);
  });
  p.literal(')');
  p.end();
  return { outputs, inputDrvs, inputSrcs, system, builder, args, env };
}

export interface PrintOptions {
  /** Output paths, and the env values named after outputs, printed as "" (hashing). */
  maskOutputs?: boolean;
  /** Printed instead of `inputDrvs` (hashing: hash hex -> output names, sorted by key). */
  actualInputs?: ReadonlyMap<string, readonly string[]>;
}

/** The ATerm text, as Nix's `Derivation::unparse` prints it. */
export function printDerivation(drv: Derivation, opts: PrintOptions = {}): string {
  const mask = opts.maskOutputs ?? false;
  const outputs = [...drv.outputs].map(
    ([name, o]) =>
      `(${quote(name)},${quote(mask ? '' : o.path)},${quote(o.hashAlgo)},${quote(o.hash)})`,
  );
  const inputs = [...(opts.actualInputs ?? drv.inputDrvs)]
    .sort(([a], [b]) => compareBytes(a, b))
    .map(([path, names]) => `(${quote(path)},${list([...names].sort(compareBytes))})`);
  const env = [...drv.env]
    .sort(([a], [b]) => compareBytes(a, b))
    .map(([k, v]) => `(${quote(k)},${quote(mask && drv.outputs.has(k) ? '' : v)})`);
  return (
    `Derive([${outputs.join(',')}],[${inputs.join(',')}],` +
    `${list([...drv.inputSrcs].sort(compareBytes))},${quote(drv.system)},${quote(drv.builder)},` +
    `${list(drv.args)},[${env.join(',')}])`
  );
}

/** Outputs whose path is only known once built: floating content-addressed or deferred. */
export function floatingOutputs(drv: Derivation): string[] {
  return [...drv.outputs].filter(([, o]) => o.path === '').map(([name]) => name);
}

/** A fixed-output derivation: one output `out` with a known hash. */
export function isFixedOutput(drv: Derivation): boolean {
  const out = drv.outputs.get('out');
  return drv.outputs.size === 1 && out !== undefined && out.hash !== '';
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function list(items: readonly string[]): string {
  return `[${items.map(quote).join(',')}]`;
}

function quote(s: string): string {
  return `"${s.replace(/[\\"\n\r\t]/g, (c) => ESCAPES[c]!)}"`;
}

const ESCAPES: Record<string, string> = {
  '\\': '\\\\',
  '"': '\\"',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
};
const UNESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t' };

class AtermReader {
  private pos = 0;

  constructor(
    private readonly text: string,
    private readonly source: string,
  ) {}

  private fail(expected: string): never {
    const near = JSON.stringify(this.text.slice(this.pos, this.pos + 20));
    throw new DerivationParseError(
      this.source,
      `expected ${expected} at offset ${this.pos}, found ${near}`,
    );
  }

  literal(s: string): void {
    if (!this.text.startsWith(s, this.pos)) this.fail(JSON.stringify(s));
    this.pos += s.length;
  }

  string(): string {
    if (this.text[this.pos] !== '"') this.fail('a string');
    let out = '';
    let i = this.pos + 1;
    for (;;) {
      const c = this.text[i];
      if (c === undefined) {
        this.pos = i;
        this.fail('the end of a string');
      }
      if (c === '"') break;
      if (c === '\\') {
        const e = this.text[i + 1];
        if (e === undefined) {
          this.pos = i;
          this.fail('an escaped character');
        }
        out += UNESCAPES[e] ?? e;
        i += 2;
      } else {
        out += c;
        i++;
      }
    }
    this.pos = i + 1;
    return out;
  }

  /** `[item,item,...]`, calling `item` for each. */
  list(item: () => void): void {
    this.literal('[');
    if (this.text[this.pos] === ']') {
      this.pos++;
      return;
    }
    for (;;) {
      item();
      if (this.text[this.pos] === ',') this.pos++;
      else if (this.text[this.pos] === ']') {
        this.pos++;
        return;
      } else this.fail('"," or "]"');
    }
  }

  end(): void {
    if (this.pos !== this.text.length) this.fail('the end of the derivation');
  }
}
