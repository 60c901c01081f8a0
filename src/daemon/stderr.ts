/**
 * The daemon's stderr channel: after every request (and the handshake) it sends log lines,
 * activity events and results until STDERR_LAST (the reply follows) or STDERR_ERROR (the
 * operation failed; the connection stays usable). Every message kind is read in full so
 * the stream stays in step, whatever the caller does with it.
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

const hex = (n: number) => `0x${n.toString(16)}`;

async function readFields(r: WireReader, what: string): Promise<DaemonField[]> {
  const n = await r.count(LIMITS.fields, `${what} fields`);
  const fields: DaemonField[] = [];
  for (let i = 0; i < n; i++) {
    const type = await r.u64(`${what} field type`);
    if (type === FIELD_INT) {
      const v = await r.u64big(`${what} integer field`);
      fields.push(v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
    } else if (type === FIELD_STRING) {
      fields.push(await r.string(LIMITS.field, `${what} string field`));
    } else {
      throw new DaemonProtocolError(`unknown ${what} field type ${type}`);
    }
  }
  return fields;
}

/** Read a STDERR_ERROR body (after its tag) into a DaemonOpError. */
export async function readDaemonError(
  r: WireReader,
  version: ProtocolVersion,
  op: string,
): Promise<DaemonOpError> {
  if (protocolMinor(version) < MINOR.structuredErrors) {
    const msg = await r.string(LIMITS.message, 'error message');
    const status = await r.u64('error status');
    return new DaemonOpError(op, stripAnsi(msg).trim(), { status });
  }
  const type = await r.string(64, 'error type');
  if (type !== 'Error')
    throw new DaemonProtocolError(`error type should be "Error", got ${JSON.stringify(type)}`);
  const level = await r.u64('error level');
  await r.string(LIMITS.message, 'error name'); // unused by Nix since 2.4
  const msg = await r.string(LIMITS.message, 'error message');
  if ((await r.u64('error position flag')) !== 0) {
    throw new DaemonProtocolError('error carries a position, which the protocol never sends');
  }
  const n = await r.count(LIMITS.traces, 'error traces');
  const traces: DaemonErrorTrace[] = [];
  for (let i = 0; i < n; i++) {
    if ((await r.u64('trace position flag')) !== 0) {
      throw new DaemonProtocolError(
        'error trace carries a position, which the protocol never sends',
      );
    }
    traces.push({ hint: stripAnsi(await r.string(LIMITS.message, 'trace hint')) });
  }
  return new DaemonOpError(op, stripAnsi(msg).trim(), { level, traces });
}

/**
 * Process stderr messages until STDERR_LAST. Throws the daemon's error as a DaemonOpError
 * (stream still in step), and DaemonProtocolError for anything that breaks the stream.
 */
export async function processStderr(
  r: WireReader,
  version: ProtocolVersion,
  op: string,
  h: StderrHandlers,
): Promise<void> {
  for (;;) {
    const msg = await r.u64('stderr message type');
    switch (msg) {
      case Stderr.LAST:
        return;
      case Stderr.ERROR:
        throw await readDaemonError(r, version, op);
      case Stderr.NEXT: {
        const text = await r.string(LIMITS.message, 'log line');
        h.onEvent?.({ kind: 'log', text: stripAnsi(text).replace(/\n$/, '') });
        break;
      }
      case Stderr.START_ACTIVITY: {
        const id = await r.u64big('activity id');
        const level = await r.u64('activity level');
        const type = await r.u64('activity type');
        const text = await r.string(LIMITS.message, 'activity text');
        const fields = await readFields(r, 'activity');
        const parent = await r.u64big('activity parent');
        h.onEvent?.({
          kind: 'start-activity',
          id,
          level,
          type,
          text: stripAnsi(text),
          fields,
          parent,
        });
        break;
      }
      case Stderr.STOP_ACTIVITY: {
        const id = await r.u64big('activity id');
        h.onEvent?.({ kind: 'stop-activity', id });
        break;
      }
      case Stderr.RESULT: {
        const id = await r.u64big('result activity id');
        const type = await r.u64('result type');
        const fields = await readFields(r, 'result');
        h.onEvent?.({ kind: 'result', id, type, fields });
        break;
      }
      case Stderr.WRITE: {
        const data = await r.bytes(LIMITS.write, 'STDERR_WRITE data');
        if (!h.sink) {
          throw new DaemonProtocolError(
            `the daemon sent data (STDERR_WRITE) during ${op}, which expects none`,
          );
        }
        h.sink(data);
        break;
      }
      case Stderr.READ: {
        const len = await r.u64('STDERR_READ length');
        if (len > LIMITS.read) {
          throw new DaemonProtocolError(
            `STDERR_READ asks for ${len} bytes, more than the limit of ${LIMITS.read}`,
          );
        }
        if (!h.source) {
          throw new DaemonProtocolError(
            `the daemon asked for data (STDERR_READ) during ${op}, which sends none`,
          );
        }
        const data = h.source(len);
        h.write(new WireWriter().bytes(data.subarray(0, len)).toBuffer());
        break;
      }
      default:
        throw new DaemonProtocolError(`unknown stderr message type ${hex(msg)} during ${op}`);
    }
  }
}
