/**
 * The BlobStore on a local directory laid out like a Nix `file://` binary cache, for local
 * caches and for benchmarks against `nix copy --to file://`.
 *
 * Writes are atomic: bytes go to a temp file in the destination's own directory (same file
 * system, so rename is atomic), are fsynced, and the temp file is renamed over the final
 * name, then the directory is fsynced so the rename survives a crash. Readers see the old
 * file or the whole new one, never a prefix. Temp files are named `.loft-tmp-<random>-<name>`,
 * never match a final key, and are skipped by `list`. A crash can leave one behind: they are
 * this store's "pending uploads", listed by `listMultipartUploads` (uploadId = temp path)
 * and removed by `abortMultipartUpload`, so prune cleans stale ones for both backends.
 * Memory is one source chunk at a time.
 *
 * Over 400 lines because it is one whole implementation of the port, and its atomic write,
 * listing and temp-file cleanup share the key/path mapping and the temp-name convention.
 */
import { randomBytes } from 'node:crypto';
import {
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  stat,
  unlink,
  access,
  constants,
} from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { nullLogger, type Logger } from '../util/log.js';
import {
  LocalDirError,
  LocalNoSuchKeyError,
  StorageDeleteError,
  StoreClosedError,
  UploadAbortedError,
} from './errors.js';
import { assertValidKey, assertValidPrefix } from './keys.js';
import type {
  BlobStore,
  ByteSource,
  CopyOptions,
  ListOptions,
  ListedObject,
  ObjectInfo,
  PendingUpload,
  PutOptions,
  UploadOptions,
  UploadResult,
} from './port.js';

export interface LocalDirStoreOptions {
  dir: string;
  /** Create the directory when missing (default true, like `nix copy --to file://`). */
  create?: boolean;
  /** fsync files and directories (default true); off only for throwaway benchmark caches. */
  fsync?: boolean;
  logger?: Logger;
}

export const TEMP_PREFIX = '.loft-tmp-';
const TEMP_NAME = /^\.loft-tmp-[0-9a-f]{16}-(.*)$/;
// Keep temp names within NAME_MAX (255) whatever the final name.
const MAX_TEMP_TAIL = 200;

function errnoOf(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | null)?.code;
}

function destroySource(source: ByteSource): void {
  const s = source as { destroy?: () => void };
  if (typeof s.destroy === 'function') s.destroy();
}

class LocalDirStore implements BlobStore {
  readonly id: string;
  readonly description: string;
  readonly #dir: string;
  readonly #create: boolean;
  readonly #fsync: boolean;
  readonly #madeDirs = new Set<string>();
  readonly #log: Logger;
  #ready: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #inFlight = 0;
  #idle: (() => void) | undefined;

  constructor(opts: LocalDirStoreOptions) {
    if (typeof opts.dir !== 'string' || opts.dir === '') {
      throw new LocalDirError(
        'the local cache directory is not set',
        'give the path of a directory',
      );
    }
    this.#dir = resolve(opts.dir);
    this.#create = opts.create ?? true;
    this.#fsync = opts.fsync ?? true;
    this.#log = opts.logger ?? nullLogger;
    this.id = `file://${this.#dir}`;
    this.description = `local cache directory ${this.#dir}`;
  }

  #path(key: string): string {
    assertValidKey(key);
    const name = key.slice(key.lastIndexOf('/') + 1);
    if (name.startsWith(TEMP_PREFIX)) {
      throw new LocalDirError(
        `key "${key}" uses the prefix reserved for temp files (${TEMP_PREFIX})`,
      );
    }
    return join(this.#dir, ...key.split('/'));
  }

  #keyOf(path: string): string {
    return path
      .slice(this.#dir.length + 1)
      .split(sep)
      .join('/');
  }

  // Every operation runs through here: the directory is checked once, close() waits.
  async #op<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closing) throw new StoreClosedError(this.description);
    this.#inFlight++;
    try {
      await (this.#ready ??= this.#prepare());
      return await fn();
    } finally {
      if (--this.#inFlight === 0) this.#idle?.();
    }
  }

  async #prepare(): Promise<void> {
    try {
      if (this.#create) await mkdir(this.#dir, { recursive: true });
      const s = await stat(this.#dir);
      if (!s.isDirectory()) throw new LocalDirError(`${this.#dir} is not a directory`);
    } catch (e) {
      this.#ready = undefined;
      if (e instanceof LocalDirError) throw e;
      throw new LocalDirError(
        `cannot use ${this.#dir} as a cache directory: ${(e as Error).message}`,
        errnoOf(e) === 'ENOENT'
          ? 'create the directory first'
          : 'check the path and its permissions',
        e,
      );
    }
  }

  async check(): Promise<void> {
    return this.#op(async () => {
      try {
        await access(this.#dir, constants.R_OK | constants.W_OK | constants.X_OK);
      } catch (e) {
        throw new LocalDirError(
          `${this.#dir} is not readable and writable by this user`,
          "fix the directory's owner or permissions",
          e,
        );
      }
    });
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const path = this.#path(key);
    return this.#op(async () => {
      try {
        const s = await stat(path);
        if (!s.isFile()) return undefined;
        return { key, size: s.size, lastModified: s.mtime, contentType: undefined };
      } catch (e) {
        if (errnoOf(e) === 'ENOENT' || errnoOf(e) === 'ENOTDIR') return undefined;
        throw e;
      }
    });
  }

  async get(key: string): Promise<Buffer | undefined> {
    const path = this.#path(key);
    return this.#op(async () => {
      try {
        return await readFile(path);
      } catch (e) {
        if (errnoOf(e) === 'ENOENT' || errnoOf(e) === 'ENOTDIR') return undefined;
        throw e;
      }
    });
  }

  async getStream(key: string): Promise<Readable | undefined> {
    const path = this.#path(key);
    return this.#op(async () => {
      try {
        const handle = await open(path, 'r');
        return handle.createReadStream();
      } catch (e) {
        if (errnoOf(e) === 'ENOENT' || errnoOf(e) === 'ENOTDIR') return undefined;
        throw e;
      }
    });
  }

  async put(key: string, body: Uint8Array | string, opts: PutOptions = {}): Promise<void> {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    await this.upload(
      key,
      (async function* () {
        yield bytes;
      })(),
      { signal: opts.signal },
    );
  }

  async upload(key: string, source: ByteSource, opts: UploadOptions = {}): Promise<UploadResult> {
    const path = this.#path(key);
    return this.#op(() => this.#writeAtomically(key, path, source, opts));
  }

  async #writeAtomically(
    key: string,
    path: string,
    source: ByteSource,
    opts: UploadOptions,
  ): Promise<UploadResult> {
    const dir = dirname(path);
    // A cache has two directories (the root and nar/): make each once, not per write.
    if (!this.#madeDirs.has(dir)) {
      await mkdir(dir, { recursive: true });
      this.#madeDirs.add(dir);
    }
    const name = path.slice(dir.length + 1);
    const tmp = join(
      dir,
      `${TEMP_PREFIX}${randomBytes(8).toString('hex')}-${name.slice(-MAX_TEMP_TAIL)}`,
    );
    const fh = await open(tmp, 'wx', 0o644).catch(async (e: unknown) => {
      if (errnoOf(e) !== 'ENOENT') throw e;
      // The directory went away (removed by hand?): make it again, once.
      await mkdir(dir, { recursive: true });
      return open(tmp, 'wx', 0o644);
    });
    let size = 0;
    let closed = false;
    // A stalled source would not notice an abort; destroying it ends the loop below.
    const onAbort = () => destroySource(source);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (opts.signal?.aborted) throw new UploadAbortedError(key);
      for await (const chunk of source as AsyncIterable<Uint8Array | string>) {
        const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        // write() may write less than asked; loop until the chunk is down.
        for (let off = 0; off < bytes.length;) {
          const { bytesWritten } = await fh.write(bytes, off, bytes.length - off);
          off += bytesWritten;
        }
        size += bytes.length;
        opts.onProgress?.(size);
        if (opts.signal?.aborted) throw new UploadAbortedError(key);
      }
      // The loop also ends quietly when an abort destroyed the source: never publish that.
      if (opts.signal?.aborted) throw new UploadAbortedError(key);
      if (this.#fsync) await fh.sync();
      await fh.close();
      closed = true;
      await rename(tmp, path);
    } catch (e) {
      if (!closed) await fh.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      destroySource(source);
      throw opts.signal?.aborted ? new UploadAbortedError(key) : e;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
    if (this.#fsync) await this.#syncDir(dir);
    return { size, parts: 1, multipart: false };
  }

  async #syncDir(dir: string): Promise<void> {
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncIterable<ListedObject> {
    assertValidPrefix(prefix);
    // Start at the deepest directory the prefix names; filter names by the rest.
    const cut = prefix.lastIndexOf('/');
    const startDir = join(
      this.#dir,
      ...prefix
        .slice(0, cut + 1)
        .split('/')
        .filter(Boolean),
    );
    for await (const entry of this.#walk(startDir, opts.recursive !== false)) {
      const key = this.#keyOf(entry.path);
      if (key.startsWith(prefix)) yield { key, size: entry.size, lastModified: entry.mtime };
    }
  }

  async *#walk(
    dir: string,
    recursive: boolean,
  ): AsyncGenerator<{ path: string; size: number; mtime: Date }> {
    let names: string[];
    try {
      names = await this.#op(() => readdir(dir));
    } catch (e) {
      if (errnoOf(e) === 'ENOENT' || errnoOf(e) === 'ENOTDIR') return;
      throw e;
    }
    names.sort();
    for (const name of names) {
      if (name.startsWith(TEMP_PREFIX)) continue;
      const path = join(dir, name);
      let s;
      try {
        s = await stat(path);
      } catch (e) {
        if (errnoOf(e) === 'ENOENT') continue; // deleted meanwhile
        throw e;
      }
      if (s.isFile()) yield { path, size: s.size, mtime: s.mtime };
      else if (recursive && s.isDirectory()) yield* this.#walk(path, recursive);
    }
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    const paths = [...new Set(keys)].map((k) => [k, this.#path(k)] as const);
    return this.#op(async () => {
      const failed: { key: string; reason: string }[] = [];
      let deleted = 0;
      for (const [key, path] of paths) {
        try {
          await unlink(path);
          deleted++;
        } catch (e) {
          if (errnoOf(e) === 'ENOENT') deleted++;
          else failed.push({ key, reason: errnoOf(e) ?? String(e) });
        }
      }
      if (failed.length > 0) throw new StorageDeleteError(this.description, failed, deleted);
    });
  }

  async copy(from: string, to: string, _opts: CopyOptions = {}): Promise<void> {
    const src = this.#path(from);
    const dst = this.#path(to);
    // Through a temp file and rename like every write, so `to` is never seen half-copied,
    // and a copy onto itself refreshes the file's mtime.
    // Open first: a missing source is a clean "no such key", not a stream error. Inside
    // #op, so close() waits for it, and destroyed at the end, so a write that fails before
    // reading does not leak the descriptor.
    await this.#op(async () => {
      const handle = await open(src, 'r').catch((e: unknown) => {
        if (errnoOf(e) === 'ENOENT') throw new LocalNoSuchKeyError(this.description, from);
        throw e;
      });
      const stream = handle.createReadStream();
      try {
        await this.#writeAtomically(to, dst, stream, {});
      } finally {
        stream.destroy();
      }
    });
  }

  async *listMultipartUploads(prefix = ''): AsyncIterable<PendingUpload> {
    assertValidPrefix(prefix);
    yield* this.#findTemps(this.#dir, prefix);
  }

  async *#findTemps(dir: string, prefix: string): AsyncGenerator<PendingUpload> {
    let entries;
    try {
      entries = await this.#op(() => readdir(dir, { withFileTypes: true }));
    } catch (e) {
      if (errnoOf(e) === 'ENOENT') return;
      throw e;
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        yield* this.#findTemps(path, prefix);
        continue;
      }
      const m = TEMP_NAME.exec(entry.name);
      if (!m || !entry.isFile()) continue;
      const key = this.#keyOf(join(dir, m[1]!));
      if (!key.startsWith(prefix)) continue;
      let initiated: Date | undefined;
      try {
        initiated = (await stat(path)).mtime;
      } catch {
        continue; // finished or removed meanwhile
      }
      yield { key, uploadId: this.#keyOf(path), initiated };
    }
  }

  async abortMultipartUpload(key: string, uploadId: string): Promise<void> {
    assertValidKey(key);
    // The upload id is the temp file's relative path; only ever delete a temp file.
    assertValidKey(uploadId);
    const name = uploadId.slice(uploadId.lastIndexOf('/') + 1);
    if (!TEMP_NAME.test(name)) {
      throw new LocalDirError(`"${uploadId}" is not a pending upload of ${this.description}`);
    }
    return this.#op(async () => {
      try {
        await unlink(join(this.#dir, ...uploadId.split('/')));
        this.#log.debug('removed a stale temp file', { key, uploadId });
      } catch (e) {
        if (errnoOf(e) !== 'ENOENT') throw e;
      }
    });
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#inFlight > 0) await new Promise<void>((r) => (this.#idle = r));
    })();
    return this.#closing;
  }
}

export function createLocalDirStore(opts: LocalDirStoreOptions): BlobStore {
  return new LocalDirStore(opts);
}
