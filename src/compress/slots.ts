/**
 * A counting semaphore whose waiters can give up. xz needs ~100 MiB and a whole core per
 * process, so running more at once than there are cores only costs memory.
 */
export class Slots {
  private free: number;
  private readonly waiters: (() => void)[] = [];

  constructor(readonly size: number) {
    this.free = size;
  }

  get inUse(): number {
    return this.size - this.free;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /** Calls `granted` when a slot is ours; returns a function that gives up the wait. */
  acquire(granted: () => void): () => void {
    if (this.free > 0) {
      this.free--;
      granted();
      return () => {};
    }
    const w = () => granted();
    this.waiters.push(w);
    return () => {
      const i = this.waiters.indexOf(w);
      if (i >= 0) this.waiters.splice(i, 1);
    };
  }

  release(): void {
    const next = this.waiters.shift();
    if (next !== undefined) next();
    else this.free++;
  }
}
