/**
 * Worker thread entry: hosts any number of zstd sessions (one CCtx each) and compresses
 * their chunks in message order. zstd-napi's calls are synchronous and take tens of
 * milliseconds per MiB, which is why they run here and never on the main thread.
 */
import { createRequire } from 'node:module';
import { parentPort } from 'node:worker_threads';
import type { FromWorker, ToWorker, ZstdSessionParams } from './zstd-protocol.js';

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

const sessions = new Map<number, CCtx>();
const idle: CCtx[] = [];
const scratch = Buffer.allocUnsafeSlow(SCRATCH_BYTES);
const empty = Buffer.alloc(0);

function openSession(p: ZstdSessionParams): CCtx {
  const cctx = idle.pop() ?? new zstd.CCtx();
  cctx.reset(zstd.ResetDirective.sessionAndParameters);
  cctx.setParameter(zstd.CParameter.compressionLevel, p.level);
  // Same as the zstd CLI's default: a content checksum the decoder verifies.
  cctx.setParameter(zstd.CParameter.checksumFlag, 1);
  if (p.nbWorkers > 0) cctx.setParameter(zstd.CParameter.nbWorkers, p.nbWorkers);
  return cctx;
}

function releaseSession(id: number): void {
  const cctx = sessions.get(id);
  if (cctx === undefined) return;
  sessions.delete(id);
  if (idle.length < MAX_IDLE_CONTEXTS) {
    // Drop any half-written frame now so the context holds no stale input.
    cctx.reset(zstd.ResetDirective.sessionOnly);
    idle.push(cctx);
  }
}

function handleData(m: Extract<ToWorker, { t: 'data' }>): void {
  let cctx = sessions.get(m.id);
  if (cctx === undefined) {
    if (m.open === undefined) throw new Error(`no zstd session ${m.id}`);
    cctx = openSession(m.open);
    sessions.set(m.id, cctx);
  }
  const out: Uint8Array[] = [];
  let used = 0;
  const emit = () => {
    if (used === 0) return;
    // An exact-size copy we own, so the main thread receives it by transfer.
    const b = Buffer.allocUnsafeSlow(used);
    scratch.copy(b, 0, 0, used);
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
  if (m.chunk !== undefined && m.chunk.length > 0) run(m.chunk, zstd.EndDirective.continue);
  if (m.end) run(empty, zstd.EndDirective.end);
  emit();
  if (m.end) releaseSession(m.id);
  const reply: FromWorker = { t: 'out', id: m.id, out, ended: m.end };
  port.postMessage(
    reply,
    out.map((b) => b.buffer as ArrayBuffer),
  );
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
    const reply: FromWorker = {
      t: 'error',
      id: m.id,
      message: e instanceof Error ? e.message : String(e),
    };
    port.postMessage(reply);
  }
});
