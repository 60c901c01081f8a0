/** The "none" method: bytes pass through unchanged, hashed once when asked. */
import { Transform, type TransformCallback } from 'node:stream';
import {
  DigestPair,
  inputMismatch,
  oversize,
  type CompressionDigests,
  type InputExpectation,
} from './digests.js';

export class NoneCompressStream extends Transform {
  private readonly hashing: DigestPair | undefined;
  private finalDigests: CompressionDigests | undefined;
  private bytesIn = 0;

  constructor(private readonly opts: { digests?: boolean; expectInput?: InputExpectation }) {
    super();
    if (opts.digests || opts.expectInput) this.hashing = new DigestPair(true);
  }

  digests(): CompressionDigests | undefined {
    return this.finalDigests;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytesIn += chunk.length;
    const tooBig = oversize(this.bytesIn, this.opts.expectInput);
    if (tooBig) return cb(tooBig);
    this.hashing?.in(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (this.hashing) {
      const d = this.hashing.finish();
      const bad = inputMismatch(d, this.opts.expectInput);
      if (bad) return cb(bad);
      this.finalDigests = d;
    }
    cb();
  }
}
