/**
 * A compressor that pipes through an external program (xz): our writes go to its stdin,
 * its stdout becomes our readable side. Backpressure crosses the pipes both ways: we
 * wait for stdin's 'drain' before taking more input, and pause stdout while our readable
 * side is full. The program starts once a slot is free (see Slots); until then writes
 * wait. Destroying the stream leaves the queue or kills the program and waits for it.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { Duplex, type Readable, type Writable } from 'node:stream';
import {
  CompressionFailedError,
  CompressionInterruptedError,
  CompressionToolMissingError,
} from './errors.js';
import type { Slots } from './slots.js';
import {
  DigestPair,
  inputMismatch,
  oversize,
  type CompressionDigests,
  type InputExpectation,
} from './digests.js';

type Callback = (err?: Error | null) => void;
type Child = ChildProcessByStdio<Writable, Readable, Readable>;

/** Keep this much of the tool's stderr for the error message. */
const STDERR_KEEP = 4096;

export interface ProcessStreamOptions {
  method: string;
  command: string;
  args: string[];
  slots: Slots;
  digests?: boolean;
  expectInput?: InputExpectation;
}

export class ProcessCompressStream extends Duplex {
  private child: Child | undefined;
  private cancelWait: (() => void) | undefined;
  private holdsSlot = false;
  /** Work that waits for the program to start. */
  private onStart: (() => void) | undefined;
  private stderr = '';
  private exited: Promise<void> | undefined;
  private exitStatus: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private stdoutEnded = false;
  private finalCb: Callback | undefined;
  private bytesIn = 0;
  private bytesOut = 0;
  private readonly hashing: DigestPair | undefined;
  private finalDigests: CompressionDigests | undefined;

  constructor(private readonly opts: ProcessStreamOptions) {
    super();
    if (opts.digests || opts.expectInput) this.hashing = new DigestPair();
    this.cancelWait = opts.slots.acquire(() => {
      this.cancelWait = undefined;
      this.holdsSlot = true;
      this.start();
    });
  }

  /** The tool's process id once started (tests check it is gone after destroy). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** sha256 and sizes of input and output, once the stream has ended (with `digests`). */
  digests(): CompressionDigests | undefined {
    return this.finalDigests;
  }

  stats(): { bytesIn: number; bytesOut: number } {
    return { bytesIn: this.bytesIn, bytesOut: this.bytesOut };
  }

  private start(): void {
    if (this.destroyed) {
      this.releaseSlot();
      return;
    }
    const { command, method } = this.opts;
    // Its own process group: a terminal's Ctrl-C must not kill a compression Loft is
    // finishing; Loft ends it (stdin closed) or kills it (destroy) itself.
    const child = spawn(command, this.opts.args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    this.child = child;
    this.exited = new Promise<void>((resolve) => {
      child.once('close', (code, signal) => {
        this.exitStatus = { code, signal };
        this.releaseSlot();
        resolve();
        this.settle();
      });
    });
    child.once('error', (e: NodeJS.ErrnoException) => {
      // A spawn failure may never emit 'close': give the slot back here too.
      this.releaseSlot();
      this.destroy(
        e.code === 'ENOENT'
          ? new CompressionToolMissingError(command, method, e)
          : new CompressionFailedError(method, `cannot run ${command}: ${e.message}`, e),
      );
    });
    // EPIPE when the tool dies early: its exit status tells the real story.
    child.stdin.on('error', () => {});
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => {
      if (this.stderr.length < STDERR_KEEP) this.stderr += s.slice(0, STDERR_KEEP);
    });
    child.stdout.on('data', (b: Buffer) => {
      this.bytesOut += b.length;
      this.hashing?.out(b);
      if (!this.push(b)) child.stdout.pause();
    });
    child.stdout.on('end', () => {
      this.stdoutEnded = true;
      this.settle();
    });
    const next = this.onStart;
    this.onStart = undefined;
    next?.();
  }

  private releaseSlot(): void {
    if (!this.holdsSlot) return;
    this.holdsSlot = false;
    this.opts.slots.release();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: Callback): void {
    const child = this.child;
    if (child === undefined) {
      this.onStart = () => this._write(chunk, _enc, cb);
      return;
    }
    this.bytesIn += chunk.length;
    this.hashing?.in(chunk);
    const tooBig = oversize(this.bytesIn, this.opts.expectInput);
    if (tooBig) {
      cb(tooBig);
      return;
    }
    if (child.stdin.write(chunk)) cb();
    else child.stdin.once('drain', () => cb());
  }

  override _final(cb: Callback): void {
    const child = this.child;
    if (child === undefined) {
      this.onStart = () => this._final(cb);
      return;
    }
    this.finalCb = cb;
    child.stdin.end();
    this.settle();
  }

  override _read(): void {
    this.child?.stdout.resume();
  }

  override _destroy(err: Error | null, cb: Callback): void {
    this.finalCb = undefined;
    this.onStart = undefined;
    this.cancelWait?.();
    this.cancelWait = undefined;
    const child = this.child;
    if (child !== undefined && this.exitStatus === undefined && child.pid !== undefined) {
      child.kill('SIGKILL');
      void this.exited?.then(() => cb(err));
      return;
    }
    cb(err);
  }

  /** Once stdin is closed, stdout is drained and the tool has exited: end or fail. */
  private settle(): void {
    if (this.destroyed || this.exitStatus === undefined) return;
    const cb = this.finalCb;
    if (cb === undefined) {
      // The tool is gone while we still had input for it (killed, out of memory).
      this.destroy(this.failure('exited before its input ended'));
      return;
    }
    if (!this.stdoutEnded) return;
    this.finalCb = undefined;
    if (this.exitStatus.code === 0) {
      if (this.hashing) {
        const d = this.hashing.finish();
        const bad = inputMismatch(d, this.opts.expectInput);
        if (bad) {
          cb(bad);
          return;
        }
        this.finalDigests = d;
      }
      this.push(null);
      cb();
    } else {
      cb(this.failure());
    }
  }

  private failure(context?: string): CompressionFailedError | CompressionInterruptedError {
    const { code, signal } = this.exitStatus ?? { code: null, signal: null };
    if (signal === 'SIGINT') {
      return new CompressionInterruptedError(
        this.opts.method,
        `${this.opts.command} was killed by SIGINT`,
      );
    }
    const how =
      signal !== null
        ? `was killed by ${signal}`
        : code === 0
          ? context
          : `exited with code ${code}`;
    const detail = this.stderr.trim();
    return new CompressionFailedError(
      this.opts.method,
      `${this.opts.command} ${how}${detail ? `: ${detail}` : ''}`,
    );
  }
}
