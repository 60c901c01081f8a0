/**
 * Evaluating the flake's Nix files with the machine's Nix (Debian's 2.8, no nixpkgs): pure
 * evaluation only, in read-only mode, so nothing is built or written to the store.
 */
import { execFile } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../../support/fixtures.js';

const exec = promisify(execFile);

export { repoRoot };
export const nixDir = join(repoRoot, 'nix');
export const nixTests = join(nixDir, 'tests');
export const fixtures = join(repoRoot, 'test', 'integration', 'nixos', 'fixtures');

/** `--arg`/`--argstr` pairs for nix-instantiate. */
export type NixArgs = { argstr?: Record<string, string>; arg?: Record<string, string> };

function argv(args: NixArgs): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(args.argstr ?? {})) out.push('--argstr', k, v);
  for (const [k, v] of Object.entries(args.arg ?? {})) out.push('--arg', k, v);
  return out;
}

/** Evaluate a file (or `-E` expression) strictly and return its JSON value. */
export async function nixEval<T = unknown>(
  target: { file: string } | { expr: string },
  args: NixArgs = {},
): Promise<T> {
  const what = 'file' in target ? [target.file] : ['-E', target.expr];
  const { stdout } = await exec(
    'nix-instantiate',
    ['--eval', '--strict', '--json', '--readonly-mode', ...what, ...argv(args)],
    { maxBuffer: 64 << 20, cwd: repoRoot },
  );
  return JSON.parse(stdout) as T;
}

/** Like nixEval, but for an evaluation that must fail: returns Nix's error text. */
export async function nixEvalError(
  target: { file: string } | { expr: string },
  args: NixArgs = {},
): Promise<string> {
  try {
    const v = await nixEval(target, args);
    throw new Error(`evaluation succeeded but should have failed: ${JSON.stringify(v)}`);
  } catch (e) {
    const err = e as { stderr?: string; code?: unknown };
    if (typeof err.stderr !== 'string' || err.code === undefined) throw e;
    return err.stderr;
  }
}

/** `nix-instantiate --parse FILE`; rejects with Nix's message when the file does not parse. */
export async function nixParse(file: string): Promise<void> {
  await exec('nix-instantiate', ['--parse', file], { maxBuffer: 64 << 20 });
}

/** Every .nix file the flake is made of: flake.nix and everything under nix/ and fixtures/. */
export function nixFiles(): string[] {
  const out = [join(repoRoot, 'flake.nix')];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.nix')) out.push(p);
    }
  };
  walk(nixDir);
  walk(fixtures);
  return out;
}
