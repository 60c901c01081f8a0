/**
 * Running built code as another user, wherever the checkout lives: the files that user
 * runs are copied into a per-run directory under /tmp (world-traversable whatever TMPDIR
 * says), readable by everyone, and removed afterwards, because the checkout itself may sit
 * in a directory only its owner can enter (a private clone, /root). What cannot work here
 * (not root, no such user, a Node that user cannot run) fails with the reason, never skips.
 */
import { execFile } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './fixtures.js';

const exec = promisify(execFile);

export interface UserRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface StagedRun {
  /** The per-run directory (mode 0755, files 0644). */
  dir: string;
  /** Run `node <dir>/<script> args...` as `user`, from `/`. */
  run(user: string, script: string, args?: string[]): Promise<UserRun>;
  /** Remove the directory. Idempotent. */
  cleanup(): void;
}

/** Fails, saying why, unless this process may switch to other users. */
export function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) {
    throw new Error(
      `${what} runs code as another user, which needs root (this is uid ${process.getuid?.()}); ` +
        'run the tests as root, as CI does',
    );
  }
}

/**
 * Copies `paths` (relative to the repository: built files under dist/, whole directories
 * too) into a fresh per-run directory at the same relative places, so their relative
 * imports hold, and writes `files` (name -> text) beside them. The directory is an ES
 * module scope (package.json "type": "module") like the repository.
 */
export function stageForOtherUsers(paths: string[], files: Record<string, string> = {}): StagedRun {
  const dir = mkdtempSync('/tmp/loft-as-user-');
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  try {
    for (const p of paths) {
      mkdirSync(join(dir, dirname(p)), { recursive: true });
      cpSync(join(repoRoot, p), join(dir, p), { recursive: true });
    }
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(join(dir, dirname(name)), { recursive: true });
      writeFileSync(join(dir, name), text);
    }
    openUp(dir);
  } catch (e) {
    cleanup();
    throw e;
  }
  return {
    dir,
    cleanup,
    async run(user, script, args = []) {
      await assertCanRun(user, join(dir, script));
      return runAs(user, process.execPath, [join(dir, script), ...args]);
    },
  };
}

/** Directories 0755, files 0644 (the umask or the checkout may have made them private). */
function openUp(path: string): void {
  if (statSync(path).isDirectory()) {
    chmodSync(path, 0o755);
    for (const name of readdirSync(path)) openUp(join(path, name));
  } else {
    chmodSync(path, 0o644);
  }
}

/** Checks, as `user`, that Node and the script can be run; throws saying what to change. */
async function assertCanRun(user: string, script: string): Promise<void> {
  const node = await runAs(user, '/usr/bin/test', ['-x', process.execPath]);
  if (node.code !== 0) {
    throw new Error(
      `user ${user} cannot run this Node (${process.execPath}): it must live where every user ` +
        'may enter (scripts/node-fetch.sh installs it under /opt/loft-node as root)',
    );
  }
  const readable = await runAs(user, '/usr/bin/test', ['-r', script]);
  if (readable.code !== 0) {
    throw new Error(`user ${user} cannot read ${script}, staged for it: check /tmp's mode`);
  }
}

/** `cmd args` as `user` (runuser), from `/`; a non-zero exit is a result, not an error. */
export async function runAs(user: string, cmd: string, args: string[]): Promise<UserRun> {
  requireRoot(`running ${cmd} as ${user}`);
  try {
    const { stdout, stderr } = await exec('runuser', ['-u', user, '--', cmd, ...args], {
      cwd: '/',
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string };
    if (typeof err.code !== 'number') throw e;
    return { code: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}
