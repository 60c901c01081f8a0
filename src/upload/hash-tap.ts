import { createHash, type Hash as CryptoHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { Hash } from '../nix/hash.js';

/**
 * A pass-through that hashes (sha256) and counts the bytes going by: the FileHash and
 * FileSize of a compressed NAR are measured on the way to storage, never by reading back.
 */
export class HashTap extends Transform {
  private readonly hash: CryptoHash = createHash('sha256');
  private size = 0;
  private digestValue: Buffer | undefined;

  constructor(private readonly onBytes?: (n: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    this.onBytes?.(chunk.length);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.digestValue = this.hash.digest();
    cb();
  }

  get bytes(): number {
    return this.size;
  }

  /** `sha256:<nix32>` of everything that went by; only after the stream has ended. */
  fileHash(): string {
    if (!this.digestValue) throw new Error('HashTap.fileHash() before the stream ended');
    return new Hash('sha256', this.digestValue).toNix32String();
  }
}
