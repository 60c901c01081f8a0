/**
 * A scripted daemon for protocol unit tests: a byte stream pair where the test says what it
 * expects the client to write and what the "daemon" sends back, step by step. Bytes are
 * built here independently of src/daemon's writer, so the tests pin the wire format itself.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import type { Transport } from '../../../src/daemon/transport.js';

/** u64 little-endian. */
export function u64(n: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

/** A framed byte string: length, bytes, zero padding to 8. */
export function str(s: string | Buffer): Buffer {
  const data = typeof s === 'string' ? Buffer.from(s) : s;
  return Buffer.concat([u64(data.length), data, Buffer.alloc((8 - (data.length % 8)) % 8)]);
}

export function strs(list: string[]): Buffer {
  return Buffer.concat([u64(list.length), ...list.map(str)]);
}

export const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

export const MAGIC1 = u64(0x6e697863);
export const MAGIC2 = u64(0x6478696f);
export const LAST = u64(0x616c7473);
export const NEXT = 0x6f6c6d67;
export const ERROR = 0x63787470;
export const START = 0x53545254;
export const STOP = 0x53544f50;
export const RESULT = 0x52534c54;
export const WRITE = 0x64617416;
export const READ = 0x64617461;

/** What a daemon of protocol 1.`minor` sends in a handshake (after reading the client's). */
export function daemonHello(minor: number): Buffer {
  return Buffer.concat([MAGIC2, u64((1 << 8) | minor)]);
}

export class ScriptedDaemon {
  /** What the client reads. */
  readonly toClient = new PassThrough();
  /** What the client writes. */
  readonly fromClient = new PassThrough();
  private received = Buffer.alloc(0);
  private consumed = 0;
  private waiters: (() => void)[] = [];
  private ended = false;
  private resolveGone!: (v: string | undefined) => void;
  readonly gone = new Promise<string | undefined>((r) => (this.resolveGone = r));
  destroyed = false;

  constructor(
    readonly endpoint = 'scripted',
    readonly kind: 'socket' | 'stdio' = 'socket',
    private readonly goneDetail: string | undefined = undefined,
  ) {
    this.fromClient.on('data', (c: Buffer) => {
      this.received = Buffer.concat([this.received, c]);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  transport(): Transport {
    return {
      kind: this.kind,
      endpoint: this.endpoint,
      readable: this.toClient,
      writable: this.fromClient,
      gone: this.gone,
      end: async () => {
        this.fromClient.end();
        this.hangUp();
      },
      destroy: () => {
        this.destroyed = true;
        this.hangUp();
      },
    };
  }

  /** Send bytes to the client. */
  send(...parts: Buffer[]): void {
    this.toClient.write(Buffer.concat(parts));
  }

  /** End the stream to the client (the daemon hangs up). */
  hangUp(): void {
    if (this.ended) return;
    this.ended = true;
    this.toClient.end();
    this.toClient.resume();
    this.resolveGone(this.goneDetail);
  }

  /** All bytes the client has written so far that no `expect` has consumed. */
  pending(): Buffer {
    return this.received.subarray(this.consumed);
  }

  /** Wait until the client has written `bytes.length` more bytes and check they are `bytes`. */
  async expect(bytes: Buffer, what = 'client bytes'): Promise<void> {
    await this.waitFor(bytes.length);
    const got = this.received.subarray(this.consumed, this.consumed + bytes.length);
    this.consumed += bytes.length;
    assert.equal(got.toString('hex'), bytes.toString('hex'), what);
  }

  /** Wait until the client has written `n` more bytes and return them. */
  async take(n: number): Promise<Buffer> {
    await this.waitFor(n);
    const got = Buffer.from(this.received.subarray(this.consumed, this.consumed + n));
    this.consumed += n;
    return got;
  }

  private async waitFor(n: number): Promise<void> {
    const deadline = Date.now() + 2000;
    while (this.received.length - this.consumed < n) {
      if (Date.now() > deadline) {
        throw new Error(
          `client wrote ${this.received.length - this.consumed} bytes, expected ${n}`,
        );
      }
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }
}

/** Handshake bytes a daemon of 1.`minor` sends after the client's post-hello fields. */
export function daemonPostHandshake(
  minor: number,
  opts: { nixVersion?: string; trust?: number; features?: string[] } = {},
): Buffer {
  const parts: Buffer[] = [];
  if (minor >= 38) parts.push(strs(opts.features ?? []));
  if (minor >= 33) parts.push(str(opts.nixVersion ?? '2.x'));
  if (minor >= 35) parts.push(u64(opts.trust ?? 0));
  parts.push(LAST);
  return Buffer.concat(parts);
}

/** What a client that negotiated 1.`minor` writes after the daemon's hello. */
export function clientPostHello(minor: number): Buffer {
  return Buffer.concat([...(minor >= 38 ? [u64(0)] : []), u64(0), u64(0)]);
}

/** A connection to a scripted daemon of protocol 1.`minor`, past the handshake. */
export async function openScripted(
  minor: number,
  opts: import('../../../src/daemon/connection.js').ConnectionOptions = {},
): Promise<{
  conn: import('../../../src/daemon/connection.js').DaemonConnection;
  d: ScriptedDaemon;
}> {
  const { DaemonConnection } = await import('../../../src/daemon/connection.js');
  const d = new ScriptedDaemon();
  const opening = DaemonConnection.open(d.transport(), opts);
  await d.take(16);
  d.send(daemonHello(minor));
  await d.take(clientPostHello(minor).length);
  d.send(daemonPostHandshake(minor));
  return { conn: await opening, d };
}

/** The 120-byte NAR of a file "hi\n" (nix-formats.md section 1), built by hand. */
export function narOf(contents: string | Buffer, ...more: Buffer[]): Buffer {
  return Buffer.concat([
    str('nix-archive-1'),
    str('('),
    str('type'),
    str('regular'),
    str('contents'),
    str(contents),
    str(')'),
    ...more,
  ]);
}

/** What an auto-responding daemon does with one request: reply bytes, or hang up. */
export type Responder = (
  op: number,
  arg: string,
) => Buffer | 'hang-up' | Promise<Buffer | 'hang-up'>;

/**
 * Answer requests of the form (op, one string argument) as they arrive, in order, with
 * `respond`. Enough for IsValidPath, QueryPathInfo, AddTempRoot and NarFromPath.
 */
export function autoRespond(d: ScriptedDaemon, respond: Responder): void {
  let chain = Promise.resolve();
  let buf = Buffer.alloc(0);
  d.fromClient.on('data', (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    for (;;) {
      if (buf.length < 16) return;
      const len = Number(buf.readBigUInt64LE(8));
      const total = 16 + len + ((8 - (len % 8)) % 8);
      if (buf.length < total) return;
      const op = Number(buf.readBigUInt64LE(0));
      const arg = buf.subarray(16, 16 + len).toString();
      buf = buf.subarray(total);
      chain = chain.then(async () => {
        const reply = await respond(op, arg);
        if (reply === 'hang-up') d.hangUp();
        else if (!d.destroyed) d.send(reply);
      });
    }
  });
}
