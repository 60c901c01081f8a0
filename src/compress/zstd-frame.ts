/**
 * One zstd frame, compressed synchronously in the calling thread. zstd-napi's calls take
 * tens of milliseconds per MiB, so this is for worker threads only (the zstd pool's and
 * the NAR packers'); the main thread uses the streams in index.ts.
 *
 * Contexts are reused per thread: a fresh CCtx allocates its tables again, which small NARs
 * feel. Output comes as exact-size copies the caller owns, so they can be transferred.
 */
import { createRequire } from 'node:module';

type Binding = typeof import('zstd-napi/binding.js');
type CCtx = InstanceType<Binding['CCtx']>;

const require = createRequire(import.meta.url);
const zstd = require('zstd-napi/binding') as Binding;

export interface ZstdFrameOptions {
  level: number;
}

/** Contexts kept for reuse. */
const MAX_IDLE_CONTEXTS = 4;
const idle: CCtx[] = [];
/** Output scratch shared by every encoder of this thread (calls never overlap). */
const scratch = Buffer.allocUnsafeSlow(Math.max(zstd.cStreamOutSize(), 512 * 1024));
const empty = new Uint8Array(0);

export class ZstdFrameEncoder {
  private cctx: CCtx | undefined;

  constructor(opts: ZstdFrameOptions) {
    const cctx = idle.pop() ?? new zstd.CCtx();
    cctx.reset(zstd.ResetDirective.sessionAndParameters);
    cctx.setParameter(zstd.CParameter.compressionLevel, opts.level);
    // Same as the zstd CLI's default: a content checksum the decoder verifies.
    cctx.setParameter(zstd.CParameter.checksumFlag, 1);
    this.cctx = cctx;
  }

  /** Compress more input; returns whatever output it produced (maybe nothing). */
  write(chunk: Uint8Array): Buffer[] {
    return chunk.length === 0 ? [] : this.run(chunk, zstd.EndDirective.continue);
  }

  /**
   * Compress the last input and finish the frame. Ending with the last chunk in the same
   * call matters for small inputs: zstd then knows the whole size, sizes its tables to it,
   * records it in the frame header and skips multi-threading.
   */
  end(chunk: Uint8Array = empty): Buffer[] {
    const out = this.run(chunk, zstd.EndDirective.end);
    this.release();
    return out;
  }

  /** Give the context back for reuse (dropping any half-written frame). Idempotent. */
  release(): void {
    const cctx = this.cctx;
    if (cctx === undefined) return;
    this.cctx = undefined;
    if (idle.length < MAX_IDLE_CONTEXTS) {
      cctx.reset(zstd.ResetDirective.sessionOnly);
      idle.push(cctx);
    }
  }

  private run(src: Uint8Array, directive: number): Buffer[] {
    const cctx = this.cctx;
    if (cctx === undefined) throw new Error('zstd frame encoder used after end() or release()');
    const out: Buffer[] = [];
    let used = 0;
    const emit = () => {
      if (used === 0) return;
      const b = Buffer.allocUnsafeSlow(used);
      scratch.copy(b, 0, 0, used);
      out.push(b);
      used = 0;
    };
    for (;;) {
      if (used === scratch.length) emit();
      const [remaining, produced, consumed] = cctx.compressStream2(
        scratch.subarray(used),
        src,
        directive,
      );
      used += produced;
      src = src.subarray(consumed);
      if (src.length === 0 && (directive === zstd.EndDirective.continue || remaining === 0)) break;
    }
    emit();
    return out;
  }
}
