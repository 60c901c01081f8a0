/**
 * Worker thread entry: hosts any number of zstd sessions (one frame encoder each) and
 * compresses their chunks in message order, hashing input and output off the main thread.
 */
import { parentPort } from 'node:worker_threads';
import { DigestPair } from './digests.js';
import { WholeFrameContexts, ZstdFrameEncoder } from './zstd-frame.js';
import type { FromWorker, ToWorker } from './zstd-protocol.js';

if (parentPort === null) throw new Error('zstd-worker.js must run as a worker thread');
const port = parentPort;

interface Session {
  encoder: ZstdFrameEncoder;
  /** Hashing here keeps a NAR's two sha256 passes off the main thread. */
  digests?: DigestPair;
}
const sessions = new Map<number, Session>();
/** Reused zstd contexts for inputs that come whole (see zstd-frame.ts). */
const contexts = new WholeFrameContexts();

function releaseSession(id: number): void {
  sessions.get(id)?.encoder.release();
  sessions.delete(id);
}

async function handleData(m: Extract<ToWorker, { t: 'data' }>): Promise<void> {
  let session = sessions.get(m.id);
  if (session === undefined) {
    if (m.open === undefined) throw new Error(`no zstd session ${m.id}`);
    session = { encoder: new ZstdFrameEncoder(m.open, contexts) };
    if (m.open.digests) session.digests = new DigestPair();
    sessions.set(m.id, session);
  }
  const { encoder, digests } = session;
  const chunk = m.chunk ?? new Uint8Array(0);
  digests?.in(chunk);
  const out = await (m.end ? encoder.end(chunk) : encoder.write(chunk));
  for (const b of out) digests?.out(b);
  if (m.end) sessions.delete(m.id);
  const r: FromWorker = { t: 'out', id: m.id, out, ended: m.end };
  if (m.end && digests) r.digests = digests.finish();
  reply(m, r, out);
}

/** Post a reply, handing the input buffer back (zstd has copied what it needs). */
function reply(m: ToWorker, r: FromWorker, out: Uint8Array[] = []): void {
  const transfer = out.map((b) => b.buffer as ArrayBuffer);
  if (m.t === 'data' && m.chunk !== undefined && r.t === 'out') {
    r.input = m.chunk;
    transfer.push(m.chunk.buffer as ArrayBuffer);
  }
  port.postMessage(r, transfer);
}

/** Set by a stop request: what is still queued is dropped, then the port closes. */
let stopping = false;

async function handle(m: ToWorker): Promise<void> {
  if (m.t === 'stop') {
    for (const id of [...sessions.keys()]) releaseSession(id);
    // Nothing left to listen to: the thread ends once zlib's calls in flight return.
    port.close();
    return;
  }
  if (stopping) return;
  if (m.t === 'close') {
    releaseSession(m.id);
    return;
  }
  try {
    await handleData(m);
  } catch (e) {
    releaseSession(m.id);
    reply(m, { t: 'error', id: m.id, message: e instanceof Error ? e.message : String(e) });
  }
}

// One message at a time, in order: a session's chunks must reach zstd in sequence, and a
// 'close' must not overtake the data before it.
let queue = Promise.resolve();
port.on('message', (m: ToWorker) => {
  if (m.t === 'stop') stopping = true;
  queue = queue.then(() => handle(m));
});
