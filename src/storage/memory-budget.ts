/**
 * A byte budget shared by every upload of one store: a part buffer is allocated only after
 * its size has been granted, and granted bytes return when the part is stored. So however
 * many uploads run at once, part buffers never hold more than `capacity` bytes, except that
 * a single part larger than the whole budget is granted alone (when nothing else is held),
 * so the bound is max(capacity, largest part).
 *
 * Grants are first come, first served, so a large part is not starved by small ones. Each
 * request is for a whole part, never a piece of one, so uploads cannot deadlock each other
 * holding half-filled parts.
 */

export interface Lease {
  readonly bytes: number;
  /** Give back what a short last part did not need. */
  shrink(toBytes: number): void;
  /** Give everything back; idempotent. */
  release(): void;
}

interface Waiter {
  bytes: number;
  grant: (lease: Lease) => void;
  fail: (reason: unknown) => void;
}

export class MemoryBudget {
  readonly capacity: number;
  #inUse = 0;
  #peak = 0;
  readonly #queue: Waiter[] = [];

  constructor(capacity: number) {
    if (!Number.isFinite(capacity) || capacity <= 0) {
      throw new RangeError(`memory budget must be a positive number of bytes, got ${capacity}`);
    }
    this.capacity = capacity;
  }

  /** Bytes granted and not yet given back. */
  get inUse(): number {
    return this.#inUse;
  }

  /** The most ever granted at once (for tests and benchmarks). */
  get peak(): number {
    return this.#peak;
  }

  get waiting(): number {
    return this.#queue.length;
  }

  acquire(bytes: number, signal?: AbortSignal): Promise<Lease> {
    if (!Number.isInteger(bytes) || bytes <= 0) {
      return Promise.reject(new RangeError(`cannot reserve ${bytes} bytes`));
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#queue.length === 0 && this.#fits(bytes)) return Promise.resolve(this.#grant(bytes));
    return new Promise<Lease>((resolve, reject) => {
      const waiter: Waiter = {
        bytes,
        grant: (lease) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(lease);
        },
        fail: reject,
      };
      const onAbort = () => {
        const i = this.#queue.indexOf(waiter);
        if (i >= 0) this.#queue.splice(i, 1);
        reject(signal?.reason);
        // The head may have been the one blocking others behind it.
        this.#drain();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#queue.push(waiter);
    });
  }

  #fits(bytes: number): boolean {
    return this.#inUse + bytes <= this.capacity || this.#inUse === 0;
  }

  #grant(bytes: number): Lease {
    this.#inUse += bytes;
    this.#peak = Math.max(this.#peak, this.#inUse);
    let held = bytes;
    const giveBack = (n: number) => {
      if (n <= 0) return;
      held -= n;
      this.#inUse -= n;
      this.#drain();
    };
    return {
      get bytes() {
        return held;
      },
      shrink: (toBytes: number) => giveBack(held - Math.max(0, Math.min(held, toBytes))),
      release: () => giveBack(held),
    };
  }

  #drain(): void {
    while (this.#queue.length > 0) {
      const head = this.#queue[0]!;
      if (!this.#fits(head.bytes)) return;
      this.#queue.shift();
      head.grant(this.#grant(head.bytes));
    }
  }
}
