/**
 * Closure shapes for the push benchmarks, built offline with Nix (`builtins.derivation`
 * and /bin/sh, see test/support/nix.ts). Per-path cost and the reference graph matter as
 * much as bytes, so each shape stresses one of them:
 *
 * - `graph`: software-like, `paths` paths in layers of 20 (depth paths/20), each
 *   referencing up to 3 paths of lower layers;
 * - `chain`: `paths` paths, each referencing the one before (closure-ordered publication
 *   costs at least one round trip per level);
 * - `small`: `paths` paths of `kb` KB each, in layers of 200, each referencing one path of
 *   the layer below (per-path cost).
 *
 * Each path's data is base64 of random bytes (two thirds) then repeated text, so zstd
 * stores roughly half of it. A root path references every path, so its closure is the set.
 */
import { nixBuild, offline, runNix } from '../test/support/nix.js';

export type ShapeName = 'graph' | 'chain' | 'small';

export interface ShapeSpec {
  shape: ShapeName;
  paths: number;
  /** Bytes of data per path. */
  bytesPerPath: number;
}

export function defaultSpec(shape: ShapeName): ShapeSpec {
  switch (shape) {
    case 'graph':
      return { shape, paths: 200, bytesPerPath: 900_000 };
    case 'chain':
      return { shape, paths: 200, bytesPerPath: 900_000 };
    case 'small':
      return { shape, paths: 2000, bytesPerPath: 10_000 };
  }
}

/** The spec a benchmark's --shape, --paths and --kb options ask for. */
export function specFromOptions(opts: { shape?: string; paths?: string; kb?: string }): ShapeSpec {
  const shape = (opts.shape ?? 'graph') as ShapeName;
  if (!['graph', 'chain', 'small'].includes(shape)) throw new Error(`unknown shape ${shape}`);
  const spec = defaultSpec(shape);
  if (opts.paths) spec.paths = Number(opts.paths);
  if (opts.kb) spec.bytesPerPath = Number(opts.kb) * 1000;
  return spec;
}

/** The Nix expression of a shape (needs `mk` from the test prelude). */
export function shapeExpr(spec: ShapeSpec): string {
  const random = Math.floor(((spec.bytesPerPath * 2) / 3) * 0.75); // base64 grows by 4/3
  const text = spec.bytesPerPath - Math.ceil(random / 3) * 4;
  const refsOf = {
    graph: `i: if i < 20 then [] else
        let l = i / 20; pick = k: (l - 1 - (mod (i * 7 + k * 13) l)) * 20 + mod (i * 11 + k * 3) 20;
        in map (k: prev (pick k)) (builtins.genList (x: x) (1 + mod i 3))`,
    chain: `i: if i == 0 then [] else [ (prev (i - 1)) ]`,
    small: `i: if i < 200 then [] else [ (prev (i - 200 + mod (i * 7) 200)) ]`,
  }[spec.shape];
  return `
    let
      mod = a: b: a - (a / b) * b;
      node = i: deps: mk "bench-${spec.shape}-\${toString i}" ''
        mkdir $out
        echo \${builtins.concatStringsSep " " (map toString deps)} > $out/refs
        head -c ${random} /dev/urandom | base64 -w 0 > $out/data
        yes "path \${toString i}: some text that repeats a lot" | head -c ${Math.max(0, text)} >> $out/data
      '';
      # A lazy list refers to itself, so each derivation is evaluated once.
      prev = i: builtins.elemAt all i;
      refs = ${refsOf};
      all = builtins.genList (i: node i (refs i)) ${spec.paths};
    in mk "bench-${spec.shape}-root" "echo \${builtins.concatStringsSep " " (map toString all)} > $out"`;
}

/** Build a shape; returns the root path. The same salt reuses what Nix built before. */
export async function buildShape(spec: ShapeSpec, salt: string): Promise<string> {
  const [root] = await nixBuild(shapeExpr(spec), salt);
  return root!;
}

/**
 * A closure of `paths` tiny paths (`builtins.toFile`, so nothing is built: Nix adds each
 * file to the store at evaluation, ~15 s for 10,000), each referencing up to 3 of the 200
 * paths before it, and a root referencing every one. For lookups, where the path count
 * matters and the bytes do not. Returns the root path.
 */
export async function buildTinyClosure(paths: number, salt: string): Promise<string> {
  const expr = `
    let
      mod = a: b: a - (a / b) * b;
      prev = i: builtins.elemAt all i;
      back = i: if i < 200 then i else 200;
      refs = i: if i == 0 then [] else
        map (k: prev (i - 1 - mod (i * 7 + k * 13) (back i))) (builtins.genList (x: x) (1 + mod i 3));
      node = i: builtins.toFile "tiny-${salt}-\${toString i}"
        "path \${toString i}\\n\${builtins.concatStringsSep "\\n" (refs i)}\\n";
      all = builtins.genList node ${paths};
    in builtins.toFile "tiny-${salt}-root" (builtins.concatStringsSep "\\n" all)`;
  const out = await runNix('nix-instantiate', [
    '--eval',
    '--strict',
    '--read-write-mode',
    ...offline,
    '-E',
    expr,
  ]);
  return JSON.parse(out.trim()) as string;
}
