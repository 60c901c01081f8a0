/**
 * A derivation's "hash modulo" (Nix's `hashDerivationModulo`), the hash that names its
 * outputs in realisations: `realisations/sha256:<hex>!<output>.doi`. Pure: derivations are
 * read through the function the caller passes, and each is hashed once per hasher.
 *
 * As Nix 2.8 computes it (src/libstore/derivations.cc):
 * - a fixed-output derivation: sha256 of `fixed:out:<hashAlgo>:<hex hash>:<output path>`;
 * - otherwise: sha256 of the derivation printed with each input derivation replaced by its
 *   own hash modulo (hex, its outputs merged when two inputs hash alike) and, for the
 *   derivation asked about (not its inputs), output paths and the env values named after
 *   outputs printed as "".
 * Every output of a derivation that is not fixed-output has the same hash.
 */
import { createHash } from 'node:crypto';
import { DerivationParseError } from './errors.js';
import { isFixedOutput, printDerivation, type Derivation } from './derivation.js';

export type ReadDerivation = (drvPath: string) => Promise<Derivation>;

const sha256Hex = (s: string) => createHash('sha256').update(s).digest('hex');

export class DerivationHasher {
  /** Input derivations' hashes (unmasked), by path: inputs are shared widely. */
  private readonly inputHashes = new Map<string, Promise<Map<string, string>>>();

  constructor(private readonly read: ReadDerivation) {}

  /**
   * Output name -> hex sha256 of `drv` modulo its outputs, as realisation ids use it
   * (Nix's `staticOutputHashes`).
   */
  outputHashes(drv: Derivation): Promise<Map<string, string>> {
    return this.hashModulo(drv, true);
  }

  private inputHash(drvPath: string): Promise<Map<string, string>> {
    let h = this.inputHashes.get(drvPath);
    if (!h) {
      h = this.read(drvPath).then((d) => this.hashModulo(d, false));
      this.inputHashes.set(drvPath, h);
    }
    return h;
  }

  private async hashModulo(drv: Derivation, maskOutputs: boolean): Promise<Map<string, string>> {
    if (isFixedOutput(drv)) {
      const out = drv.outputs.get('out')!;
      return new Map([['out', sha256Hex(`fixed:out:${out.hashAlgo}:${out.hash}:${out.path}`)]]);
    }
    const actualInputs = new Map<string, string[]>();
    const inputs = [...drv.inputDrvs];
    const hashes = await Promise.all(inputs.map(([path]) => this.inputHash(path)));
    inputs.forEach(([path, names], i) => {
      for (const name of names) {
        const h = hashes[i]!.get(name);
        if (h === undefined) {
          throw new DerivationParseError(path, `it has no output ${JSON.stringify(name)}`);
        }
        const merged = actualInputs.get(h) ?? [];
        if (!merged.includes(name)) merged.push(name);
        actualInputs.set(h, merged);
      }
    });
    const hash = sha256Hex(printDerivation(drv, { maskOutputs, actualInputs }));
    return new Map([...drv.outputs.keys()].map((name) => [name, hash]));
  }
}
