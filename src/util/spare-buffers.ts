/**
 * A few buffers of one size kept for reuse. A fresh buffer is memory touched for the first
 * time (the garbage collector frees external memory late, so it is rarely memory freed just
 * before), and its page faults can cost more than the work done in it; a kept one is warm.
 * Only for owners that are done with a buffer's bytes when they give it back.
 */
export class SpareBuffers {
  private readonly spare: Buffer[] = [];

  constructor(
    readonly size: number,
    private readonly kept: number,
  ) {}

  /** A buffer of `size` bytes, contents undefined: a kept one, else a new one. */
  take(): Buffer {
    return this.spare.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  /** Keep `b` for a later take(), if it is one of ours and there is room: whether it was. */
  give(b: Buffer): boolean {
    if (b.length !== this.size || this.spare.length >= this.kept) return false;
    this.spare.push(b);
    return true;
  }

  /** How many are kept now. */
  get count(): number {
    return this.spare.length;
  }
}
