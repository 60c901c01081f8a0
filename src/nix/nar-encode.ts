/**
 * Streaming NAR encoder over an injected filesystem (`NarSource`), so this module stays
 * pure. Output is an async generator of chunks: the consumer's pace drives reading
 * (backpressure), small writes are coalesced into `chunkSize` buffers, and large file
 * chunks pass through without copying. Memory is bounded by the output chunk, one
 * read-ahead window of small files, and one large-file read at a time; no whole large file
 * is ever held.
 *
 * Rules, as Nix's dumpPath: entries sorted by raw name bytes, executable iff the owner
 * execute bit is set, symlinks stored with their target, anything else is an error.
 */
import { NarSourceChangedError, NarUnsupportedFileError } from './errors.js';
import { NAR_MAGIC, framed as frame, padding, writeU64 } from './wire.js';

export type NarFileType =
  | 'regular'
  | 'directory'
  | 'symlink'
  | 'socket'
  | 'fifo'
  | 'character-device'
  | 'block-device'
  | 'unknown';

export interface NarSourceStat {
  type: NarFileType;
  /** Size in bytes (regular files). */
  size: number;
  /** Permission bits; only the owner execute bit (0o100) matters. */
  mode: number;
}

/** The filesystem the encoder reads. Paths and names are raw bytes (not always UTF-8). */
export interface NarSource {
  lstat(path: Buffer): Promise<NarSourceStat>;
  /** Entry names, without "." and "..", in any order. */
  readdir(path: Buffer): Promise<Buffer[]>;
  readlink(path: Buffer): Promise<Buffer>;
  /**
   * A regular file's bytes to its end, in chunks. `size` is what lstat said; the encoder
   * checks the total against it, so a source may stop reading after `size + 1` bytes.
   */
  readFile(path: Buffer, size: number): AsyncIterable<Uint8Array>;
  /** Optional faster path for small files: the whole file in one buffer. */
  readSmallFile?(path: Buffer, size: number): Promise<Uint8Array>;
  /**
   * Optional, for `into` (see NarEncodeOptions): fill `dest` with the file's first
   * `dest.length` bytes and return how many the file had, at most `dest.length + 1` (one
   * more means it grew; fewer, that it ended early).
   */
  readFileInto?(path: Buffer, dest: Uint8Array): Promise<number>;
}

export interface NarEncodeOptions {
  /** Size of the output chunks small writes are coalesced into. Default 256 KiB. */
  chunkSize?: number;
  /** Files up to this size are read whole and ahead of time. Default 64 KiB. */
  smallFileSize?: number;
  /** How many directory entries are stat'ed (and small files read) ahead. Default 16. */
  readAhead?: number;
  /**
   * Write the NAR into this buffer, from its start, while it fits: the chunks are then views
   * of it, and files are read straight into it when the source can (`readFileInto`). What
   * does not fit comes in chunks of its own, as without it. For a caller that gathers the
   * whole NAR anyway (the packer, for small NARs): it saves copying every byte once more.
   */
  into?: Uint8Array;
}

const DEFAULT_CHUNK_SIZE = 256 * 1024;
const DEFAULT_SMALL_FILE_SIZE = 64 * 1024;
const DEFAULT_READ_AHEAD = 16;

/** A framed token, ready to copy. */
function framed(s: string): Buffer {
  return frame(Buffer.from(s, 'latin1'));
}

const T = {
  magic: framed(NAR_MAGIC),
  open: framed('('),
  close: framed(')'),
  // Frequent sequences, pre-joined.
  regular: Buffer.concat([framed('('), framed('type'), framed('regular')]),
  executable: Buffer.concat([framed('executable'), framed('')]),
  contents: framed('contents'),
  symlink: Buffer.concat([framed('('), framed('type'), framed('symlink'), framed('target')]),
  directory: Buffer.concat([framed('('), framed('type'), framed('directory')]),
  entry: Buffer.concat([framed('entry'), framed('('), framed('name')]),
  node: framed('node'),
  closeEntry: Buffer.concat([framed(')'), framed(')')]),
};
const ZEROS = Buffer.alloc(8);

/**
 * Coalesces writes into chunks; large data buffers pass through without a copy. With an
 * arena (`into`), everything is written into it at its offset in the NAR, until it is full.
 */
class ChunkWriter {
  private buf: Buffer;
  /** Where the chunk not yet handed on starts in `buf` (past 0 only in the arena). */
  private start = 0;
  private len = 0;
  private ready: Buffer[] = [];
  private arena: Buffer | undefined;

  constructor(
    private readonly chunkSize: number,
    into?: Uint8Array,
  ) {
    if (into !== undefined && into.length > 0) {
      this.arena = Buffer.from(into.buffer, into.byteOffset, into.byteLength);
      this.buf = this.arena;
    } else this.buf = Buffer.allocUnsafe(chunkSize);
  }

  /** `n` bytes of the arena, next to be written, for a file read in place; or undefined. */
  room(n: number): Buffer | undefined {
    if (this.arena === undefined || this.arena.length - this.len < n) return undefined;
    return this.arena.subarray(this.len, this.len + n);
  }

  /** File contents: large pieces are handed on as they are, without a copy. */
  data(b: Uint8Array): void {
    if (this.arena !== undefined) {
      // Read in place (room()): the bytes are there already. Anything else is copied in, so
      // the arena keeps every byte at its offset in the NAR.
      if (b.buffer === this.arena.buffer && b.byteOffset === this.arena.byteOffset + this.len) {
        this.len += b.length;
        if (this.len === this.buf.length) this.flush();
      } else this.bytes(b);
      return;
    }
    if (b.length >= this.chunkSize >> 2) {
      this.flush();
      this.ready.push(Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));
      return;
    }
    this.bytes(b);
  }

  bytes(b: Uint8Array): void {
    // Fill the chunk to the brim, so chunks out are full-sized.
    let at = 0;
    while (at < b.length) {
      const n = Math.min(b.length - at, this.buf.length - this.len);
      this.buf.set(at === 0 && n === b.length ? b : b.subarray(at, at + n), this.len);
      this.len += n;
      at += n;
      if (this.len === this.buf.length) this.flush();
    }
  }

  u64(n: number): void {
    if (this.len + 8 > this.buf.length) {
      const tmp = Buffer.allocUnsafe(8);
      writeU64(tmp, n, 0);
      this.bytes(tmp);
      return;
    }
    writeU64(this.buf, n, this.len);
    this.len += 8;
    if (this.len === this.buf.length) this.flush();
  }

  pad(len: number): void {
    const p = padding(len);
    if (p > 0) this.bytes(ZEROS.subarray(0, p));
  }

  str(b: Uint8Array): void {
    this.u64(b.length);
    this.bytes(b);
    this.pad(b.length);
  }

  flush(): void {
    if (this.len === this.start) return;
    this.ready.push(this.buf.subarray(this.start, this.len));
    if (this.arena !== undefined && this.len < this.arena.length) {
      this.start = this.len;
      return;
    }
    // A chunk handed on owns the rest of its buffer; a full arena is done with.
    this.arena = undefined;
    this.buf = Buffer.allocUnsafe(this.chunkSize);
    this.start = 0;
    this.len = 0;
  }

  /** Complete chunks waiting to go out. */
  take(): Buffer[] {
    const r = this.ready;
    this.ready = [];
    return r;
  }
}

interface Prepared {
  stat: NarSourceStat;
  /** Whole contents of a small regular file, read ahead. */
  data?: Uint8Array;
  /** Read-ahead budget this entry holds until it is written. */
  reserved?: number;
  /** A symlink's target. */
  target?: Buffer;
}

interface Entry {
  name: Buffer;
  path: Buffer;
  prepared?: Promise<Prepared>;
}

interface DirFrame {
  /** Entries not yet written; written ones are cleared so their data can be collected. */
  entries: (Entry | undefined)[];
  next: number;
}

const SLASH = Buffer.from('/');

const display = (p: Buffer): string => p.toString('utf8');

function describe(type: NarFileType): string {
  switch (type) {
    case 'socket':
      return 'it is a socket';
    case 'fifo':
      return 'it is a named pipe (fifo)';
    case 'character-device':
      return 'it is a character device';
    case 'block-device':
      return 'it is a block device';
    default:
      return 'it is not a regular file, directory or symlink';
  }
}

function checkEntryName(dir: Buffer, name: Buffer): void {
  const bad =
    name.length === 0 ||
    (name.length === 1 && name[0] === 0x2e) ||
    (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e) ||
    name.includes(0x2f) ||
    name.includes(0);
  if (bad) {
    throw new NarUnsupportedFileError(
      display(dir),
      `the directory lists an invalid entry name ${JSON.stringify(display(name))}`,
    );
  }
}

/**
 * Encode the file tree at `root` as a NAR, chunk by chunk. The consumer pulls chunks; when
 * it stops pulling, reading stops (and `return()` closes any open file).
 */
export async function* encodeNar(
  source: NarSource,
  root: Buffer | string,
  options: NarEncodeOptions = {},
): AsyncGenerator<Buffer, void, undefined> {
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const smallFileSize = options.smallFileSize ?? DEFAULT_SMALL_FILE_SIZE;
  const readAhead = Math.max(1, options.readAhead ?? DEFAULT_READ_AHEAD);
  if (!Number.isInteger(chunkSize) || chunkSize < 64)
    throw new RangeError(`chunkSize must be an integer >= 64`);

  const rootPath = typeof root === 'string' ? Buffer.from(root) : root;
  const out = new ChunkWriter(chunkSize, options.into);

  // Bytes of small files read ahead but not yet written out: bounded across all
  // directory levels, so deep trees do not multiply the read-ahead memory.
  const budget = readAhead * smallFileSize;
  let reserved = 0;

  const readSmall = async (path: Buffer, size: number): Promise<Uint8Array> => {
    const data = source.readSmallFile
      ? await source.readSmallFile(path, size)
      : await collect(source.readFile(path, size), size, path);
    checkSize(path, size, data.length);
    return data;
  };

  const prepare = async (path: Buffer): Promise<Prepared> => {
    const stat = await source.lstat(path);
    if (stat.type === 'regular' && stat.size <= smallFileSize && reserved + stat.size <= budget) {
      reserved += stat.size;
      return { stat, data: await readSmall(path, stat.size), reserved: stat.size };
    }
    if (stat.type === 'symlink') return { stat, target: await source.readlink(path) };
    return { stat };
  };

  /** Start preparing entries up to the read-ahead window. */
  const fill = (frame: DirFrame) => {
    for (let k = frame.next; k < frame.entries.length && k < frame.next + readAhead; k++) {
      const e = frame.entries[k]!;
      if (e !== undefined && e.prepared === undefined) {
        e.prepared = prepare(e.path);
        // Failures surface when the entry is reached; until then, do not crash the process.
        e.prepared.catch(() => {});
      }
    }
  };

  const stack: DirFrame[] = [];
  out.bytes(T.magic);

  let current: { path: Buffer; prepared: Promise<Prepared> } | undefined = {
    path: rootPath,
    prepared: prepare(rootPath),
  };
  while (current !== undefined || stack.length > 0) {
    if (current !== undefined) {
      const { path } = current;
      const prepared = await current.prepared;
      const { stat, target } = prepared;
      current = undefined;
      reserved -= prepared.reserved ?? 0;
      const data =
        prepared.data ??
        (stat.type === 'regular' && stat.size <= smallFileSize
          ? await readSmall(path, stat.size)
          : undefined);
      switch (stat.type) {
        case 'regular': {
          out.bytes(T.regular);
          if ((stat.mode & 0o100) !== 0) out.bytes(T.executable);
          out.bytes(T.contents);
          out.u64(stat.size);
          const dest = data === undefined && source.readFileInto ? out.room(stat.size) : undefined;
          if (data !== undefined) {
            out.data(data);
          } else if (dest !== undefined) {
            checkSize(path, stat.size, await source.readFileInto!(path, dest));
            out.data(dest);
          } else {
            let seen = 0;
            for await (const chunk of source.readFile(path, stat.size)) {
              seen += chunk.length;
              if (seen > stat.size) break;
              out.data(chunk);
              yield* out.take();
            }
            checkSize(path, stat.size, seen);
          }
          out.pad(stat.size);
          out.bytes(T.close);
          if (stack.length > 0) out.bytes(T.close);
          break;
        }
        case 'symlink':
          out.bytes(T.symlink);
          out.str(target!);
          out.bytes(T.close);
          if (stack.length > 0) out.bytes(T.close);
          break;
        case 'directory': {
          out.bytes(T.directory);
          const names = await source.readdir(path);
          names.sort(Buffer.compare);
          for (let k = 0; k < names.length; k++) {
            checkEntryName(path, names[k]!);
            if (k > 0 && names[k - 1]!.equals(names[k]!)) {
              throw new NarUnsupportedFileError(
                display(path),
                `the directory lists ${JSON.stringify(display(names[k]!))} twice`,
              );
            }
          }
          const frame: DirFrame = {
            entries: names.map((name) => ({ name, path: Buffer.concat([path, SLASH, name]) })),
            next: 0,
          };
          stack.push(frame);
          break;
        }
        default:
          throw new NarUnsupportedFileError(display(path), describe(stat.type));
      }
    } else {
      const frame = stack[stack.length - 1]!;
      if (frame.next === frame.entries.length) {
        // Close this directory's node, and the entry holding it (unless it is the root).
        stack.pop();
        out.bytes(T.close);
        if (stack.length > 0) out.bytes(T.close);
      } else {
        fill(frame);
        const e = frame.entries[frame.next]!;
        frame.entries[frame.next] = undefined;
        frame.next++;
        out.bytes(T.entry);
        out.str(e.name);
        out.bytes(T.node);
        current = { path: e.path, prepared: e.prepared! };
      }
    }
    yield* out.take();
  }
  out.flush();
  yield* out.take();
}

function checkSize(path: Buffer, expected: number, got: number): void {
  if (got !== expected) {
    throw new NarSourceChangedError(
      display(path),
      got < expected
        ? `it has ${got} bytes, but ${expected} when listed`
        : `it grew beyond the ${expected} bytes it had when listed`,
    );
  }
}

async function collect(
  chunks: AsyncIterable<Uint8Array>,
  size: number,
  path: Buffer,
): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const c of chunks) {
    parts.push(c);
    n += c.length;
    if (n > size) break;
  }
  checkSize(path, size, n);
  return Buffer.concat(parts, n);
}
