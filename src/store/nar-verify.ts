/**
 * Checks a NAR stream against the narHash and narSize the store registered. Bytes pass
 * through as they come; the stream errors instead of ending when the total differs, and
 * errors as soon as it grows past narSize. A consumer that publishes only on 'end' can
 * therefore never publish a corrupt NAR.
 */
import { createHash, type Hash as Hasher } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { Hash } from '../nix/hash.js';
import { NarMismatchError } from './errors.js';

export interface NarExpectation {
  narHash: string;
  narSize: number;
}

/**
 * The checking stream. The expectation may be set after construction (a store hands the
 * stream out before it has queried the path info) but must be set before any byte arrives.
 */
export class NarVerifier extends Transform {
  private expected: NarExpectation | undefined;
  private want: Hash | undefined;
  private hasher: Hasher | undefined;
  private size = 0;

  /**
   * @param hashedByCaller the consumer hashes the bytes itself (the upload pipeline does,
   *   off the main thread) and publishes nothing unless they match: only sizes are checked
   *   here, so the NAR is not hashed twice.
   */
  constructor(
    readonly path: string,
    expected?: NarExpectation,
    private readonly hashedByCaller = false,
  ) {
    super({ highWaterMark: 256 << 10 });
    if (expected) this.expect(expected);
  }

  expect(expected: NarExpectation): void {
    this.expected = expected;
    this.want = Hash.parse(expected.narHash);
    if (!this.hashedByCaller) this.hasher = createHash(this.want.algo);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const exp = this.expected;
    if (!exp) {
      cb(new Error('internal: NAR bytes arrived before the expected narHash was set'));
      return;
    }
    this.size += chunk.length;
    if (this.size > exp.narSize) {
      cb(this.mismatch(undefined));
      return;
    }
    this.hasher?.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    const exp = this.expected;
    if (!exp) {
      cb(new Error('internal: NAR ended before the expected narHash was set'));
      return;
    }
    if (this.hasher === undefined) {
      cb(this.size === exp.narSize ? undefined : this.mismatch(undefined));
      return;
    }
    const got = new Hash(this.want!.algo, this.hasher.digest());
    if (this.size !== exp.narSize || !got.equals(this.want!))
      cb(this.mismatch(got.toNix32String()));
    else cb();
  }

  private mismatch(actualHash: string | undefined): NarMismatchError {
    return new NarMismatchError(this.path, {
      expectedHash: this.expected!.narHash,
      expectedSize: this.expected!.narSize,
      actualHash,
      actualSize: this.size,
      against: 'registered',
    });
  }
}

export function verifyNar(path: string, expected: NarExpectation): NarVerifier {
  return new NarVerifier(path, expected);
}
