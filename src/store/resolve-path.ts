/**
 * Turns what a user types (`./result`, a profile link, a file inside a store path) into a
 * store path, the way Nix does: follow symlinks until the path is inside the store, then
 * keep only the store path's own component.
 */
import { lstat, readlink, realpath } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseStorePath } from '../nix/store-path.js';
import { PathMissingError, PathOutsideStoreError } from './errors.js';

/** Symlink hops before giving up (Linux's own limit is 40). */
const MAX_HOPS = 40;

function inStore(p: string, storeDir: string): boolean {
  return p.startsWith(`${storeDir}/`) && p.length > storeDir.length + 1;
}

function storePathOf(p: string, storeDir: string): string {
  const base = p.slice(storeDir.length + 1).split('/')[0]!;
  return parseStorePath(`${storeDir}/${base}`, storeDir).path;
}

export async function resolveStorePath(
  userPath: string,
  storeDir: string,
  cwd: string,
): Promise<string> {
  let p = resolve(cwd, userPath);
  for (let hops = 0; hops < MAX_HOPS && !inStore(p, storeDir); hops++) {
    let isLink: boolean;
    try {
      isLink = (await lstat(p)).isSymbolicLink();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new PathMissingError(userPath);
      throw e;
    }
    if (!isLink) break;
    p = resolve(dirname(p), await readlink(p));
  }
  if (inStore(p, storeDir)) return storePathOf(p, storeDir);

  // A symlinked directory on the way (or a store dir reached through a symlink): let the
  // kernel resolve everything, and compare with the store dir resolved the same way.
  let real: string;
  try {
    real = await realpath(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new PathMissingError(userPath);
    throw e;
  }
  if (inStore(real, storeDir)) return storePathOf(real, storeDir);
  const realStore = await realpath(storeDir).catch(() => storeDir);
  if (realStore !== storeDir && inStore(real, realStore)) {
    return storePathOf(`${storeDir}${real.slice(realStore.length)}`, storeDir);
  }
  throw new PathOutsideStoreError(userPath, real, storeDir);
}
