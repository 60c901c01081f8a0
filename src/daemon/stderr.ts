/**
 * The daemon's stderr channel: after every request (and the handshake) it sends log lines,
 * activity events and results until STDERR_LAST (the reply follows) or STDERR_ERROR (the
 * operation failed; the connection stays usable). Every message kind is read in full so
 * the stream stays in step, whatever the caller does with it.
 *
 * Messages are parsed synchronously from buffered bytes (see cursor.ts); each is consumed
 * and acted on once it is complete, so nothing is reported twice when bytes are missing.
 */
import {
  FIELD_INT,
  FIELD_STRING,
  LIMITS,
  MINOR,
  Stderr,
  protocolMinor,
  type ProtocolVersion,
} from './constants.js';
import { Cursor, NeedMore } from './cursor.js';
import { DaemonOpError, DaemonProtocolError, stripAnsi, type DaemonErrorTrace } from './errors.js';
import type { WireReader } from './wire-reader.js';
import { WireWriter } from './wire-writer.js';

/** An activity or result field: integers that fit a double are numbers, larger are bigints. */
export type DaemonField = number | bigint | string;

export type StderrEvent =
  | { kind: 'log'; text: string }
  | {
      kind: 'start-activity';
      id: bigint;
      level: number;
      type: number;
      text: string;
      fields: DaemonField[];
      parent: bigint;
    }
  | { kind: 'stop-activity'; id: bigint }
  | { kind: 'result'; id: bigint; type: number; fields: DaemonField[] };

export interface StderrHandlers {
  /** Log lines, activities and results, in order. */
  onEvent?(event: StderrEvent): void;
  /** Receives STDERR_WRITE data; without it, such data is a protocol error. */
  sink?(data: Buffer): void;
  /** Answers STDERR_READ (up to `len` bytes); without it, a READ is a protocol error. */
  source?(len: number): Buffer;
  /** Sends bytes to the daemon (for answering READ). */
  write(data: Buffer): void;
}

type Message =
  | { kind: 'last' }
  | { kind: 'error'; error: DaemonOpError }
  | { kind: 'event'; event: StderrEvent }
  | { kind: 'write'; data: Buffer }
  | { kind: 'read'; len: number };

const LAST_MESSAGE: Message = { kind: 'last' };
const hex = (n: number) => `0x${n.toString(16)}`;

function readFields(c: Cursor, what: string): DaemonField[] {
  const n = c.count(LIMITS.fields, `${what} fields`);
  const fields: DaemonField[] = [];
  for (let i = 0; i < n; i++) {
    const type = c.u64(`${what} field type`);
    if (type === FIELD_INT) {
      const v = c.u64big(`${what} integer field`);
      fields.push(v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
    } else if (type === FIELD_STRING) {
      fields.push(c.string(LIMITS.field, `${what} string field`));
    } else {
      throw new DaemonProtocolError(`unknown ${what} field type ${type}`);
    }
  }
  return fields;
}

/** A STDERR_ERROR body (after its tag) as a DaemonOpError. */
export function readDaemonError(c: Cursor, version: ProtocolVersion, op: string): DaemonOpError {
  if (protocolMinor(version) < MINOR.structuredErrors) {
    const msg = c.string(LIMITS.message, 'error message');
    const status = c.u64('error status');
    return new DaemonOpError(op, stripAnsi(msg).trim(), { status });
  }
  const type = c.string(64, 'error type');
  if (type !== 'Error')
    throw new DaemonProtocolError(`error type should be "Error", got ${JSON.stringify(type)}`);
  const level = c.u64('error level');
  c.string(LIMITS.message, 'error name'); // unused by Nix since 2.4
  const msg = c.string(LIMITS.message, 'error message');
  if (c.u64('error position flag') !== 0) {
    throw new DaemonProtocolError('error carries a position, which the protocol never sends');
  }
  const n = c.count(LIMITS.traces, 'error traces');
  const traces: DaemonErrorTrace[] = [];
  for (let i = 0; i < n; i++) {
    if (c.u64('trace position flag') !== 0) {
      throw new DaemonProtocolError(
        'error trace carries a position, which the protocol never sends',
      );
    }
    traces.push({ hint: stripAnsi(c.string(LIMITS.message, 'trace hint')) });
  }
  return new DaemonOpError(op, stripAnsi(msg).trim(), { level, traces });
}

/** Parse one stderr message; throws NeedMore if it is not complete yet. */
function parseMessage(c: Cursor, version: ProtocolVersion, op: string): Message {
  const msg = c.u64('stderr message type');
  switch (msg) {
    case Stderr.LAST:
      return LAST_MESSAGE;
    case Stderr.ERROR:
      return { kind: 'error', error: readDaemonError(c, version, op) };
    case Stderr.NEXT: {
      const text = c.string(LIMITS.message, 'log line');
      return { kind: 'event', event: { kind: 'log', text: stripAnsi(text).replace(/\n$/, '') } };
    }
    case Stderr.START_ACTIVITY: {
      const id = c.u64big('activity id');
      const level = c.u64('activity level');
      const type = c.u64('activity type');
      const text = c.string(LIMITS.message, 'activity text');
      const fields = readFields(c, 'activity');
      const parent = c.u64big('activity parent');
      return {
        kind: 'event',
        event: { kind: 'start-activity', id, level, type, text: stripAnsi(text), fields, parent },
      };
    }
    case Stderr.STOP_ACTIVITY:
      return { kind: 'event', event: { kind: 'stop-activity', id: c.u64big('activity id') } };
    case Stderr.RESULT: {
      const id = c.u64big('result activity id');
      const type = c.u64('result type');
      const fields = readFields(c, 'result');
      return { kind: 'event', event: { kind: 'result', id, type, fields } };
    }
    case Stderr.WRITE:
      return { kind: 'write', data: c.bytes(LIMITS.write, 'STDERR_WRITE data') };
    case Stderr.READ: {
      const len = c.u64('STDERR_READ length');
      if (len > LIMITS.read) {
        throw new DaemonProtocolError(
          `STDERR_READ asks for ${len} bytes, more than the limit of ${LIMITS.read}`,
        );
      }
      return { kind: 'read', len };
    }
    default:
      throw new DaemonProtocolError(`unknown stderr message type ${hex(msg)} during ${op}`);
  }
}

/** Act on a complete non-final message (already consumed from the reader). */
function apply(m: Message, op: string, h: StderrHandlers): void {
  switch (m.kind) {
    case 'event':
      h.onEvent?.(m.event);
      return;
    case 'write':
      if (!h.sink) {
        throw new DaemonProtocolError(
          `the daemon sent data (STDERR_WRITE) during ${op}, which expects none`,
        );
      }
      h.sink(m.data);
      return;
    case 'read': {
      if (!h.source) {
        throw new DaemonProtocolError(
          `the daemon asked for data (STDERR_READ) during ${op}, which sends none`,
        );
      }
      const data = h.source(m.len);
      h.write(new WireWriter().bytes(data.subarray(0, m.len)).toBuffer());
      return;
    }
    case 'error':
      throw m.error;
    case 'last':
      return;
  }
}

export type TryReply<T> = { done: true; value: T } | { done: false; need: number };

/**
 * Read stderr messages and then the reply body (`body`, parsed synchronously) from what is
 * buffered. Returns the value, or how many bytes must be buffered before trying again
 * (from the reader's head; pass it back as `need`). A daemon error is thrown as
 * DaemonOpError once read in full; anything malformed as DaemonProtocolError.
 */
export function tryReply<T>(
  r: WireReader,
  version: ProtocolVersion,
  op: string,
  h: StderrHandlers,
  body: (c: Cursor, version: ProtocolVersion) => T,
  need = 0,
): TryReply<T> {
  for (;;) {
    const v = r.view(need);
    if (v === undefined) return { done: false, need: Math.max(need, 8) };
    const c = new Cursor(v.buf, v.start, v.end);
    let m: Message;
    try {
      m = parseMessage(c, version, op);
      if (m.kind === 'last') {
        const value = body(c, version);
        r.skip(c.consumed);
        return { done: true, value };
      }
    } catch (e) {
      if (e instanceof NeedMore) return { done: false, need: e.need };
      throw e;
    }
    r.skip(c.consumed);
    need = 0;
    apply(m, op, h);
  }
}

const NO_BODY = () => undefined;

/** Read stderr messages until STDERR_LAST, waiting for bytes as needed. */
export async function processStderr(
  r: WireReader,
  version: ProtocolVersion,
  op: string,
  h: StderrHandlers,
): Promise<void> {
  let need = 0;
  for (;;) {
    const t = tryReply(r, version, op, h, NO_BODY, need);
    if (t.done) return;
    need = t.need;
    await r.waitFor(need, `the ${op} reply`);
  }
}
