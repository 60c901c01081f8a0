/**
 * Incremental NAR parser and validator. Feed it bytes in chunks of any size with `push`; it
 * says how many bytes belonged to the archive (so a reader can find the end of an unframed
 * NAR, as the daemon's NarFromPath sends it), reports nodes to an optional visitor, and
 * accepts only canonical archives: the exact token sequence Nix writes, zero padding,
 * entries strictly sorted by name bytes, no "", ".", "..", "/" or NUL in names. Every
 * length-prefixed string except file contents has a maximum length, so a hostile stream
 * cannot make it buffer without bound; file contents stream through without being held.
 *
 * Over 400 lines because the grammar and its chunk-resuming byte driver share one state
 * machine; split apart, that state would have to be exposed between them.
 */
import { InvalidNarError, TruncatedNarError } from './errors.js';
import { NAR_MAGIC, badPaddingAt, padding, readU64 } from './wire.js';

/** Path of a node from the archive root: one raw name per level, `[]` for the root. */
export type NarPath = readonly Buffer[];

export interface NarFileInfo {
  /** Size of the contents in bytes. */
  size: number;
  executable: boolean;
  /** Offset in the NAR of the first content byte (as in Nix's `.ls` listings). */
  narOffset: number;
}

/**
 * Receives the archive as it is parsed, in order. Paths and names are fresh copies the
 * visitor may keep; `contents` chunks may be views of the buffer given to `push`.
 */
export interface NarVisitor {
  directory?(path: NarPath): void;
  directoryEnd?(path: NarPath): void;
  /** A regular file starts; its `contents` chunks follow (none when empty), then `fileEnd`. */
  file?(path: NarPath, info: NarFileInfo): void;
  contents?(chunk: Buffer, path: NarPath): void;
  fileEnd?(path: NarPath): void;
  symlink?(path: NarPath, target: Buffer): void;
}

export interface NarParserOptions {
  visitor?: NarVisitor;
  /** Longest directory entry name accepted, in bytes. Default 1024. */
  maxNameLength?: number;
  /** Longest symlink target accepted, in bytes. Default 4096. */
  maxTargetLength?: number;
}

export const DEFAULT_MAX_NAME_LENGTH = 1024;
export const DEFAULT_MAX_TARGET_LENGTH = 4096;
/** The longest structural token is "nix-archive-1"; anything much longer is garbage. */
const MAX_TOKEN_LENGTH = 64;

/** What the grammar (a generator) asks the byte driver for next. */
type Need =
  /** A framed string of at most `max` bytes; resumes with its bytes (padding checked). */
  | { kind: 'str'; max: number; what: string }
  /** A u64; resumes with it as a number (values beyond 2^53-1 are rejected). */
  | { kind: 'u64'; what: string }
  /** `size` content bytes streamed to the visitor, then their zero padding. */
  | { kind: 'data'; size: number; path: NarPath };

const MAGIC_WHAT = 'the NAR magic';
const NEED_TOKEN: Need = { kind: 'str', max: MAX_TOKEN_LENGTH, what: 'a token' };
const NEED_SIZE: Need = { kind: 'u64', what: 'file size' };

const tok = (s: string) => Buffer.from(s, 'latin1');
const T = {
  magic: tok(NAR_MAGIC),
  open: tok('('),
  close: tok(')'),
  type: tok('type'),
  regular: tok('regular'),
  directory: tok('directory'),
  symlink: tok('symlink'),
  executable: tok('executable'),
  contents: tok('contents'),
  target: tok('target'),
  entry: tok('entry'),
  name: tok('name'),
  node: tok('node'),
  empty: Buffer.alloc(0),
};

const show = (b: Buffer) => JSON.stringify(b.toString('latin1').slice(0, 80));

interface DirFrame {
  path: NarPath;
  prev: Buffer | undefined;
}

export class NarParser {
  private readonly visitor: NarVisitor;
  private readonly needName: Need;
  private readonly needTarget: Need;
  private readonly grammar: Generator<Need, void, Buffer | number | undefined>;
  private need: Need | undefined;
  private finished = false;
  private failure: unknown;
  /** Bytes consumed so far. */
  private pos = 0;
  /** Where the token being read started (for error messages). */
  private tokenStart = 0;

  // Slow-path state for a `str`/`u64` need split across chunks.
  private phase: 'len' | 'bytes' | 'pad' = 'len';
  private acc = Buffer.alloc(8);
  private accFill = 0;
  private strLen = 0;
  private strBytes: Buffer = T.empty;
  // State for a `data` need.
  private dataLeft = 0;
  private dataPadLeft = -1;

  constructor(options: NarParserOptions = {}) {
    this.visitor = options.visitor ?? {};
    const maxName = options.maxNameLength ?? DEFAULT_MAX_NAME_LENGTH;
    const maxTarget = options.maxTargetLength ?? DEFAULT_MAX_TARGET_LENGTH;
    this.needName = { kind: 'str', max: maxName, what: 'entry name' };
    this.needTarget = { kind: 'str', max: maxTarget, what: 'symlink target' };
    this.grammar = this.run();
    this.advance(undefined);
  }

  /** True once the archive's last byte has been consumed. */
  get done(): boolean {
    return this.finished;
  }

  /** Bytes of the archive consumed so far; the NAR's size once `done`. */
  get offset(): number {
    return this.pos;
  }

  /**
   * Feed the next bytes. Returns how many of them belong to the archive: all of them, unless
   * the archive ended inside this chunk. Throws InvalidNarError on a malformed archive (and
   * again on every later call).
   */
  push(chunk: Uint8Array): number {
    if (this.failure !== undefined) throw this.failure;
    if (this.finished) return 0;
    const buf = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    try {
      return this.consume(buf);
    } catch (e) {
      this.failure = e;
      throw e;
    }
  }

  /** Declare the input finished: throws TruncatedNarError unless the archive is complete. */
  end(): number {
    if (this.failure !== undefined) throw this.failure;
    if (!this.finished) {
      const need = this.need;
      const expected =
        need === undefined ? 'more data' : need.kind === 'data' ? 'file contents' : need.what;
      this.failure = new TruncatedNarError(this.pos, expected);
      throw this.failure;
    }
    return this.pos;
  }

  private advance(value: Buffer | number | undefined): void {
    const r = this.grammar.next(value);
    if (r.done) {
      this.finished = true;
      this.need = undefined;
      return;
    }
    this.need = r.value;
    this.phase = 'len';
    this.accFill = 0;
    this.tokenStart = this.pos;
    if (r.value.kind === 'data') {
      this.dataLeft = r.value.size;
      this.dataPadLeft = -1;
    }
  }

  private consume(buf: Buffer): number {
    const start = this.pos;
    let i = 0;
    const n = buf.length;
    while (!this.finished) {
      const need = this.need!;
      if (need.kind === 'data') {
        if (this.dataLeft > 0) {
          if (i >= n) break;
          const take = Math.min(this.dataLeft, n - i);
          const piece = buf.subarray(i, i + take);
          i += take;
          this.pos += take;
          this.dataLeft -= take;
          this.visitor.contents?.(piece, need.path);
          continue;
        }
        if (this.dataPadLeft < 0) this.dataPadLeft = padding(need.size);
        while (this.dataPadLeft > 0 && i < n) {
          if (buf[i] !== 0) this.fail(this.pos, 'non-zero padding after file contents');
          i++;
          this.pos++;
          this.dataPadLeft--;
        }
        if (this.dataPadLeft > 0) break;
        this.advance(undefined);
        continue;
      }

      // Fast path: the whole field is in this chunk.
      if (this.phase === 'len' && this.accFill === 0 && n - i >= 8) {
        const v = readLength(buf, i, this.pos, need.what);
        if (need.kind === 'u64') {
          i += 8;
          this.pos += 8;
          this.advance(v);
          continue;
        }
        this.checkMax(v, need);
        const pad = padding(v);
        if (n - i >= 8 + v + pad) {
          const s = buf.subarray(i + 8, i + 8 + v);
          const bad = badPaddingAt(buf, i + 8 + v, i + 8 + v + pad);
          if (bad !== -1) this.fail(this.pos + (bad - i), `non-zero padding after ${need.what}`);
          i += 8 + v + pad;
          this.pos += 8 + v + pad;
          this.advance(s);
          continue;
        }
      }

      // Slow path: accumulate across chunks.
      if (i >= n) break;
      if (this.phase === 'len') {
        const take = Math.min(8 - this.accFill, n - i);
        buf.copy(this.acc, this.accFill, i, i + take);
        this.accFill += take;
        i += take;
        this.pos += take;
        if (this.accFill < 8) break;
        const v = readLength(this.acc, 0, this.tokenStart, need.what);
        if (need.kind === 'u64') {
          this.advance(v);
          continue;
        }
        this.checkMax(v, need);
        this.strLen = v;
        this.strBytes = Buffer.allocUnsafe(v);
        this.accFill = 0;
        this.phase = 'bytes';
      }
      if (this.phase === 'bytes') {
        const take = Math.min(this.strLen - this.accFill, n - i);
        buf.copy(this.strBytes, this.accFill, i, i + take);
        this.accFill += take;
        i += take;
        this.pos += take;
        if (this.accFill < this.strLen) break;
        this.accFill = 0;
        this.phase = 'pad';
      }
      const pad = padding(this.strLen);
      while (this.accFill < pad && i < n) {
        if (buf[i] !== 0) this.fail(this.pos, `non-zero padding after ${need.what}`);
        i++;
        this.pos++;
        this.accFill++;
      }
      if (this.accFill < pad) break;
      this.advance(this.strBytes);
    }
    return this.pos - start;
  }

  private checkMax(len: number, need: Need & { kind: 'str' }): void {
    if (len > need.max) {
      if (need.what === MAGIC_WHAT)
        this.fail(0, 'not a Nix archive: it does not start with the NAR magic');
      this.fail(
        this.tokenStart,
        `${need.what} is ${len} bytes long, more than the limit of ${need.max}`,
      );
    }
  }

  private fail(at: number, reason: string): never {
    throw new InvalidNarError(at, reason);
  }

  private check(got: Buffer, token: Buffer, context: string): void {
    if (!got.equals(token))
      this.fail(this.tokenStart, `expected ${show(token)} ${context}, got ${show(got)}`);
  }

  /**
   * The grammar, as Nix writes it (see nar-encode.ts for the same sequence produced). It is
   * iterative with an explicit directory stack, so nesting depth costs no generator chain.
   */
  private *run(): Generator<Need, void, Buffer | number | undefined> {
    const magic = (yield { kind: 'str', max: MAX_TOKEN_LENGTH, what: MAGIC_WHAT }) as Buffer;
    if (!magic.equals(T.magic)) {
      this.fail(0, `not a Nix archive: expected the magic ${show(T.magic)}, got ${show(magic)}`);
    }

    const stack: DirFrame[] = [];
    let path: NarPath = [];
    for (;;) {
      this.check((yield NEED_TOKEN) as Buffer, T.open, 'to open a node');
      this.check((yield NEED_TOKEN) as Buffer, T.type, 'after "("');
      const type = (yield NEED_TOKEN) as Buffer;
      let finished = true;
      if (type.equals(T.regular)) {
        let field = (yield NEED_TOKEN) as Buffer;
        let executable = false;
        if (field.equals(T.executable)) {
          const marker = (yield NEED_TOKEN) as Buffer;
          if (marker.length !== 0) {
            this.fail(this.tokenStart, `the executable marker must be "", got ${show(marker)}`);
          }
          executable = true;
          field = (yield NEED_TOKEN) as Buffer;
        }
        if (!field.equals(T.contents)) {
          this.fail(
            this.tokenStart,
            `expected "executable" or "contents" in a regular file, got ${show(field)}`,
          );
        }
        const size = (yield NEED_SIZE) as number;
        this.visitor.file?.(path, { size, executable, narOffset: this.pos });
        yield { kind: 'data', size, path };
        this.visitor.fileEnd?.(path);
        this.check((yield NEED_TOKEN) as Buffer, T.close, 'after file contents');
      } else if (type.equals(T.symlink)) {
        this.check((yield NEED_TOKEN) as Buffer, T.target, 'in a symlink');
        const target = (yield this.needTarget) as Buffer;
        if (target.length === 0) this.fail(this.tokenStart, 'empty symlink target');
        if (target.includes(0)) this.fail(this.tokenStart, 'symlink target contains a NUL byte');
        this.visitor.symlink?.(path, Buffer.from(target));
        this.check((yield NEED_TOKEN) as Buffer, T.close, 'after a symlink target');
      } else if (type.equals(T.directory)) {
        this.visitor.directory?.(path);
        stack.push({ path, prev: undefined });
        finished = false;
      } else {
        this.fail(
          this.tokenStart,
          `unknown node type ${show(type)} (expected regular, symlink or directory)`,
        );
      }

      // Find the next node to parse, closing entries and directories on the way.
      for (;;) {
        const top = stack[stack.length - 1];
        if (finished) {
          if (top === undefined) return;
          this.check((yield NEED_TOKEN) as Buffer, T.close, 'to close a directory entry');
        }
        const field = (yield NEED_TOKEN) as Buffer;
        if (field.equals(T.close)) {
          this.visitor.directoryEnd?.(top!.path);
          stack.pop();
          finished = true;
          continue;
        }
        if (!field.equals(T.entry)) {
          this.fail(this.tokenStart, `expected "entry" or ")" in a directory, got ${show(field)}`);
        }
        this.check((yield NEED_TOKEN) as Buffer, T.open, 'after "entry"');
        this.check((yield NEED_TOKEN) as Buffer, T.name, 'in a directory entry');
        const name = Buffer.from((yield this.needName) as Buffer);
        const nameAt = this.tokenStart;
        checkName(name, nameAt);
        const prev = top!.prev;
        if (prev !== undefined && Buffer.compare(prev, name) >= 0) {
          this.fail(
            nameAt,
            prev.equals(name)
              ? `duplicate directory entry ${show(name)}`
              : `directory entries not sorted: ${show(name)} after ${show(prev)}`,
          );
        }
        top!.prev = name;
        this.check((yield NEED_TOKEN) as Buffer, T.node, 'after an entry name');
        path = [...top!.path, name];
        break;
      }
    }
  }
}

function checkName(name: Buffer, at: number): void {
  let reason: string | undefined;
  if (name.length === 0) reason = 'empty entry name';
  else if (name.length <= 2 && (name.equals(DOT) || name.equals(DOTDOT)))
    reason = `entry name ${show(name)}`;
  else if (name.includes(0x2f)) reason = `entry name ${show(name)} contains "/"`;
  else if (name.includes(0)) reason = `entry name ${show(name)} contains a NUL byte`;
  if (reason !== undefined) throw new InvalidNarError(at, `invalid ${reason}`);
}

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

/** A u64 length as a number; lengths beyond 2^53-1 cannot be real and are rejected. */
function readLength(buf: Buffer, at: number, offset: number, what: string): number {
  const v = readU64(buf, at);
  if (typeof v === 'bigint') {
    if (what === MAGIC_WHAT)
      throw new InvalidNarError(0, 'not a Nix archive: it does not start with the NAR magic');
    throw new InvalidNarError(offset, `${what} length ${v} is beyond 2^53-1 bytes`);
  }
  return v;
}

/**
 * Parse a complete NAR held in memory. Throws if it is malformed, incomplete, or followed
 * by extra bytes. Returns its size.
 */
export function parseNar(bytes: Uint8Array, options: NarParserOptions = {}): number {
  const p = new NarParser(options);
  const used = p.push(bytes);
  p.end();
  if (used !== bytes.length) {
    throw new InvalidNarError(used, `${bytes.length - used} bytes follow the end of the archive`);
  }
  return used;
}
