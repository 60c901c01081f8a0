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

/**
 * Reuses part buffers. Allocating a fresh 8 MiB buffer per part costs page faults on first
 * touch and, worse, garbage-collector work driven by external memory (about half the
 * client's CPU time on a 512 MiB upload before this pool). Idle buffers are kept only while
 * granted plus idle bytes stay within the budget, so the bound on part memory holds, and
 * all are dropped after `idleMs` without use, so an idle daemon holds none.
 */
export class BufferPool {
  readonly #budget: MemoryBudget;
  readonly #idleMs: number;
  readonly #free = new Map<number, Buffer[]>();
  #idleBytes = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** How many buffers were allocated rather than reused (for tests and benchmarks). */
  allocations = 0;

  constructor(budget: MemoryBudget, idleMs = 2000) {
    this.#budget = budget;
    this.#idleMs = idleMs;
  }

  get idleBytes(): number {
    return this.#idleBytes;
  }

  /** A buffer of `size` bytes (contents undefined). Call after the budget granted `size`. */
  take(size: number): Buffer {
    const reused = this.#free.get(size)?.pop();
    if (reused) {
      this.#idleBytes -= size;
      return reused;
    }
    // Granted bytes (this one included) plus idle ones stay within the budget.
    this.#evict(this.#budget.capacity - this.#budget.inUse);
    this.allocations++;
    return Buffer.allocUnsafeSlow(size);
  }

  /**
   * Hand a buffer back while its bytes are still granted, then release the lease: a waiter
   * granted by that release finds the buffer here instead of allocating one.
   */
  give(buf: Buffer): void {
    const n = buf.buffer.byteLength;
    // Granted bytes already include this buffer's.
    if (n !== buf.length || this.#idleBytes + this.#budget.inUse > this.#budget.capacity) {
      return; // the garbage collector's then
    }
    let list = this.#free.get(n);
    if (!list) this.#free.set(n, (list = []));
    list.push(buf);
    this.#idleBytes += n;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.trim(), this.#idleMs);
    this.#timer.unref?.();
  }

  /** Drop every idle buffer. */
  trim(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#free.clear();
    this.#idleBytes = 0;
  }

  #evict(allowedIdle: number): void {
    for (const [size, list] of this.#free) {
      while (this.#idleBytes > allowedIdle && list.length > 0) {
        list.pop();
        this.#idleBytes -= size;
      }
      if (list.length === 0) this.#free.delete(size);
    }
  }
}
