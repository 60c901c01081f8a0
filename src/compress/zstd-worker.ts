/**
 * Worker thread entry: hosts any number of zstd sessions (one CCtx each) and compresses
 * their chunks in message order. zstd-napi's calls are synchronous and take tens of
 * milliseconds per MiB, which is why they run here and never on the main thread.
 */
import { createHash, type Hash as Hasher } from 'node:crypto';
import { createRequire } from 'node:module';
import { parentPort } from 'node:worker_threads';
import type { FromWorker, SessionDigests, ToWorker, ZstdSessionParams } from './zstd-protocol.js';

type Binding = typeof import('zstd-napi/binding.js');
type CCtx = InstanceType<Binding['CCtx']>;

const require = createRequire(import.meta.url);
const zstd = require('zstd-napi/binding') as Binding;

if (parentPort === null) throw new Error('zstd-worker.js must run as a worker thread');
const port = parentPort;

/** Output scratch space shared by all sessions (the thread handles one message at a time). */
const SCRATCH_BYTES = Math.max(zstd.cStreamOutSize(), 512 * 1024);
/** Contexts kept for reuse: a fresh CCtx allocates its tables again, which small NARs feel. */
const MAX_IDLE_CONTEXTS = 4;
const MAX_IDLE_MT_CONTEXTS = 1;

interface Session {
  cctx: CCtx;
  nbWorkers: number;
  /** Hashing here keeps a NAR's two sha256 passes off the main thread. */
  hashes?: { input: Hasher; output: Hasher; inputSize: number; outputSize: number };
}
const sessions = new Map<number, Session>();
/** Idle contexts by thread count: a multi-threaded one holds its job buffers (tens of MiB). */
const idle = new Map<number, CCtx[]>();
const scratch = Buffer.allocUnsafeSlow(SCRATCH_BYTES);
const empty = Buffer.alloc(0);

function openSession(p: ZstdSessionParams): Session {
  const cctx = idle.get(p.nbWorkers)?.pop() ?? new zstd.CCtx();
  cctx.reset(zstd.ResetDirective.sessionAndParameters);
  cctx.setParameter(zstd.CParameter.compressionLevel, p.level);
  // Same as the zstd CLI's default: a content checksum the decoder verifies.
  cctx.setParameter(zstd.CParameter.checksumFlag, 1);
  if (p.nbWorkers > 0) {
    cctx.setParameter(zstd.CParameter.nbWorkers, p.nbWorkers);
    if (p.jobSize !== undefined) cctx.setParameter(zstd.CParameter.jobSize, p.jobSize);
  }
  const session: Session = { cctx, nbWorkers: p.nbWorkers };
  if (p.digests) {
    session.hashes = {
      input: createHash('sha256'),
      output: createHash('sha256'),
      inputSize: 0,
      outputSize: 0,
    };
  }
  return session;
}

function releaseSession(id: number): void {
  const s = sessions.get(id);
  if (s === undefined) return;
  sessions.delete(id);
  let list = idle.get(s.nbWorkers);
  if (list === undefined) idle.set(s.nbWorkers, (list = []));
  if (list.length < (s.nbWorkers > 0 ? MAX_IDLE_MT_CONTEXTS : MAX_IDLE_CONTEXTS)) {
    // Drop any half-written frame now so the context holds no stale input.
    s.cctx.reset(zstd.ResetDirective.sessionOnly);
    list.push(s.cctx);
  }
}

function handleData(m: Extract<ToWorker, { t: 'data' }>): void {
  let session = sessions.get(m.id);
  if (session === undefined) {
    if (m.open === undefined) throw new Error(`no zstd session ${m.id}`);
    session = openSession(m.open);
    sessions.set(m.id, session);
  }
  const cctx = session.cctx;
  const hashes = session.hashes;
  const out: Uint8Array[] = [];
  let used = 0;
  const emit = () => {
    if (used === 0) return;
    // An exact-size copy we own, so the main thread receives it by transfer.
    const b = Buffer.allocUnsafeSlow(used);
    scratch.copy(b, 0, 0, used);
    if (hashes) {
      hashes.output.update(b);
      hashes.outputSize += used;
    }
    out.push(b);
    used = 0;
  };
  const run = (src: Uint8Array, directive: number) => {
    for (;;) {
      if (used === scratch.length) emit();
      const [remaining, produced, consumed] = cctx.compressStream2(
        scratch.subarray(used),
        src,
        directive,
      );
      used += produced;
      src = src.subarray(consumed);
      if (src.length === 0 && (directive === zstd.EndDirective.continue || remaining === 0)) {
        return;
      }
    }
  };
  // Ending with the last chunk in the same call matters for small NARs sent in one
  // message: zstd then knows the whole size, sizes its tables to it, records it in the
  // frame header and skips multi-threading.
  const chunk = m.chunk ?? empty;
  if (hashes) {
    hashes.input.update(chunk);
    hashes.inputSize += chunk.length;
  }
  if (m.end) run(chunk, zstd.EndDirective.end);
  else if (chunk.length > 0) run(chunk, zstd.EndDirective.continue);
  emit();
  let digests: SessionDigests | undefined;
  if (m.end && hashes) {
    digests = {
      inputSha256: hashes.input.digest(),
      inputSize: hashes.inputSize,
      outputSha256: hashes.output.digest(),
      outputSize: hashes.outputSize,
    };
  }
  if (m.end) releaseSession(m.id);
  const r: FromWorker = { t: 'out', id: m.id, out, ended: m.end };
  if (digests) r.digests = digests;
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

port.on('message', (m: ToWorker) => {
  if (m.t === 'close') {
    releaseSession(m.id);
    return;
  }
  try {
    handleData(m);
  } catch (e) {
    // A failed context may be mid-frame in an unknown state: do not reuse it.
    sessions.delete(m.id);
    reply(m, { t: 'error', id: m.id, message: e instanceof Error ? e.message : String(e) });
  }
});
