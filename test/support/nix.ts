/**
 * Real Nix for tests: build store paths offline with Debian's Nix (builder /bin/sh, no
 * substituters) and ask the real CLI for the answers our code must match.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** Options every test invocation of Nix gets: no network, no waiting on DNS. */
export const offline = ['--option', 'substituters', ''];

/** A fresh salt, so a test's store paths are its own and no other test shares them. */
export function salt(): string {
  return randomBytes(8).toString('hex');
}

/**
 * The Nix prelude for test expressions: `mk name script deps` builds with /bin/sh;
 * writing "${dep}" into $out creates a reference. Every derivation carries the salt;
 * `extraAttrs` (Nix attribute lines) go into each, e.g. to make them content-addressed.
 */
export function prelude(s: string, extraAttrs = ''): string {
  return `
let
  mk = name: script: derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" script ];
    PATH = "/usr/bin:/bin";
    salt = "${s}";${extraAttrs}
  };
in`;
}

/**
 * Build a Nix expression (which may use `mk` from the prelude) and return its output paths
 * in the order nix-build prints them. The expression evaluates to a derivation or a list.
 */
export async function nixBuild(expr: string, s: string = salt()): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'loft-nix-'));
  const file = join(dir, 'default.nix');
  writeFileSync(file, `${prelude(s)}\n${expr}\n`);
  try {
    const { stdout } = await exec('nix-build', [file, '--no-out-link', ...offline], {
      maxBuffer: 64 << 20,
    });
    return stdout.split('\n').filter((l) => l.length > 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `nix-store --dump PATH` as bytes (for NAR comparisons). */
export function nixStoreDump(path: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('nix-store', ['--dump', path], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`nix-store --dump: ${err}`)),
    );
  });
}

/** `nix-store -qR`: the closure, as Nix itself computes it. */
export async function nixRequisites(paths: string[]): Promise<string[]> {
  const { stdout } = await exec('nix-store', ['-qR', ...paths], { maxBuffer: 64 << 20 });
  return stdout.split('\n').filter((l) => l.length > 0);
}

/**
 * Run a Nix command (`nix`, `nix-store`, ...) and return its stdout; `nix` itself gets the
 * experimental `nix-command` feature. Rejects with Nix's stderr on a non-zero exit.
 */
export function runNix(
  cmd: string,
  args: string[],
  input?: string | Buffer,
  env?: NodeJS.ProcessEnv,
): Promise<string> {
  const full = cmd === 'nix' ? ['--extra-experimental-features', 'nix-command', ...args] : args;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, full, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: env && { ...process.env, ...env },
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve(Buffer.concat(out).toString())
        : reject(new Error(`${cmd} ${full.join(' ')} exited ${code}: ${err}`)),
    );
    child.stdin.end(input);
  });
}

const storeRoots: string[] = [];

/**
 * An empty directory for a throwaway chroot store (`--store DIR`), removed when the test
 * process exits: each holds whole substituted closures, and a full suite makes many.
 */
export function freshStoreRoot(): string {
  const dir = mkdtempSync(join(tmpdir(), 'loft-store-'));
  if (storeRoots.length === 0) process.once('exit', removeStoreRoots);
  storeRoots.push(dir);
  return dir;
}

function removeStoreRoots(): void {
  for (const dir of storeRoots) {
    try {
      // Nix leaves store paths read-only; a user other than root must make them writable.
      if (process.getuid?.() !== 0) spawnSync('chmod', ['-R', 'u+w', dir]);
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // A leftover in the temp directory is not worth failing a finished test for.
    }
  }
}
