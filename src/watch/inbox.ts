/**
 * The post-build hook's inbox: a directory next to the local index (`inbox/` beside
 * `local_cache_path`) where each hook run drops one small file listing its store paths.
 *
 * Why files and not the database: Nix runs the hook as root and waits for it, while the
 * service may run as another user (systemd DynamicUser). A file written atomically (temp
 * name, then rename) needs no lock, no SQLite and no shared ownership: the service reads
 * each file, commits its paths to the durable queue, and only then deletes it. Files are
 * made world-readable (store paths are public) so the service can read what root wrote.
 *
 * File format (UTF-8): a `# loft-inbox v1` line, then one store path per line.
 */
import {
  closeSync,
  fchmodSync,
  fsyncSync,
  mkdirSync,
  openSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { readdir, readFile, stat, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { watch, type FSWatcher } from 'node:fs';
import { HASH_PART_LENGTH } from '../nix/store-path.js';
import { NIX32_ALPHABET } from '../nix/nixbase32.js';
import { InboxPathError, InboxWriteError } from './errors.js';

export const INBOX_DIR_NAME = 'inbox';
export const INBOX_HEADER = '# loft-inbox v1';
const SUFFIX = '.paths';
const TEMP_PREFIX = '.tmp-';
/** A temp file this old was left by a hook that died mid-write. */
export const STALE_TEMP_MS = 3_600_000;

const STORE_PATH_RE = new RegExp(
  `^/(?:[^/\\0]+/)*[${NIX32_ALPHABET}]{${HASH_PART_LENGTH}}-[^/\\0]+$`,
);

/** `dirname(local_cache_path)/inbox`: the same for the hook and the service. */
export function inboxDirFor(localCachePath: string): string {
  return join(dirname(localCachePath), INBOX_DIR_NAME);
}

/** Shape check only (no daemon, no store dir): what the hook can verify on its own. */
export function looksLikeStorePath(p: string): boolean {
  return STORE_PATH_RE.test(p) && !p.includes('/../') && !p.includes('/./');
}

/**
 * Record `paths` as one inbox file, atomically and durably (fsync before the rename), and
 * return its path. Synchronous: the hook does nothing else, and every millisecond here is
 * a millisecond the build waits.
 */
export function writeInboxFile(
  dir: string,
  paths: readonly string[],
  opts: { now?: number; pid?: number } = {},
): string {
  for (const p of paths) if (!looksLikeStorePath(p)) throw new InboxPathError(p);
  const name = `${opts.now ?? Date.now()}-${opts.pid ?? process.pid}-${randomBytes(4).toString('hex')}${SUFFIX}`;
  const temp = join(dir, `${TEMP_PREFIX}${name}`);
  const final = join(dir, name);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const fd = openSync(temp, 'wx', 0o644);
    try {
      // The umask may have cleared read bits; the service (another user) must read it.
      fchmodSync(fd, 0o644);
      writeSync(fd, `${INBOX_HEADER}\n${paths.join('\n')}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, final);
  } catch (e) {
    try {
      unlinkSync(temp);
    } catch {
      // never created, or already renamed
    }
    throw new InboxWriteError(dir, (e as Error).message, e);
  }
  return final;
}

export interface InboxFile {
  file: string;
  /** Lines that look like store paths, in order, without duplicates. */
  paths: string[];
  /** Lines that do not (reported, then dropped with the file). */
  bad: string[];
}

/** Parse one inbox file's text. Pure. */
export function parseInboxText(text: string): { paths: string[]; bad: string[] } {
  const paths = new Set<string>();
  const bad: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (looksLikeStorePath(line)) paths.add(line);
    else bad.push(line);
  }
  return { paths: [...paths], bad };
}

/**
 * The inbox's finished files, oldest first (names start with the time). A missing inbox
 * is empty. Temp files older than STALE_TEMP_MS are removed on the way.
 */
export async function readInbox(dir: string, now = Date.now()): Promise<InboxFile[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return [];
    throw e;
  }
  const out: InboxFile[] = [];
  for (const name of names.sort()) {
    const file = join(dir, name);
    if (name.startsWith(TEMP_PREFIX)) {
      const st = await stat(file).catch(() => undefined);
      if (st && now - st.mtimeMs > STALE_TEMP_MS) await unlink(file).catch(() => {});
      continue;
    }
    if (!name.endsWith(SUFFIX)) continue;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') continue; // taken meanwhile
      throw e;
    }
    out.push({ file, ...parseInboxText(text) });
  }
  return out;
}

/** Delete a file whose paths are committed to the queue. */
export async function removeInboxFile(file: string): Promise<void> {
  await unlink(file).catch((e: unknown) => {
    if ((e as { code?: string }).code !== 'ENOENT') throw e;
  });
}

/** How many finished files wait in the inbox (for `--status`). */
export async function countInbox(dir: string): Promise<number> {
  try {
    return (await readdir(dir)).filter((n) => n.endsWith(SUFFIX) && !n.startsWith(TEMP_PREFIX))
      .length;
  } catch {
    return 0;
  }
}

/**
 * Calls `onChange` (debounced) when files land in the inbox. Missed events are harmless:
 * the service also reads the inbox on a timer.
 */
export class InboxWatcher {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly dir: string,
    private readonly onChange: () => void,
    private readonly onError: (e: Error) => void,
    private readonly debounceMs = 50,
  ) {}

  start(): void {
    this.watcher = watch(this.dir, { persistent: true }, (_type, name) => {
      if (typeof name !== 'string' || !name.endsWith(SUFFIX) || name.startsWith(TEMP_PREFIX)) {
        return;
      }
      if (this.timer) clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.onChange();
      }, this.debounceMs);
    });
    this.watcher.on('error', (e) => {
      this.close();
      this.onError(e);
    });
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.watcher?.close();
    this.watcher = undefined;
  }
}
