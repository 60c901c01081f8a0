/**
 * Many concurrent requests under one AbortSignal. Handing the shared signal to each request
 * adds one abort listener per request in flight (the SDK's, a retry's sleep), and past ten
 * Node warns of a leak (MaxListenersExceededWarning). Here the shared signal has one
 * listener, and each request gets a signal of its own that it aborts.
 */
export class SignalFanout {
  readonly #children = new Set<AbortController>();
  readonly #parent: AbortSignal | undefined;
  readonly #onAbort = () => {
    for (const c of this.#children) c.abort(this.#parent?.reason);
  };

  constructor(parent: AbortSignal | undefined) {
    this.#parent = parent;
    parent?.addEventListener('abort', this.#onAbort, { once: true });
  }

  /** Run `f` with a signal that aborts with the shared one; undefined when there is none. */
  async run<T>(f: (signal: AbortSignal | undefined) => Promise<T>): Promise<T> {
    if (this.#parent === undefined) return f(undefined);
    const c = new AbortController();
    if (this.#parent.aborted) c.abort(this.#parent.reason);
    this.#children.add(c);
    try {
      return await f(c.signal);
    } finally {
      this.#children.delete(c);
    }
  }

  /** Remove the one listener from the shared signal. Idempotent. */
  dispose(): void {
    this.#parent?.removeEventListener('abort', this.#onAbort);
  }

  /** Requests running now (tests). */
  get active(): number {
    return this.#children.size;
  }
}
