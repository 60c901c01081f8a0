/**
 * Temp roots keep paths from garbage collection while they are uploaded. The daemon ties a
 * temp root to the connection that added it, so roots live on dedicated connections
 * ("generations"): new leases join the current one; once it has rooted `recycleAfter`
 * paths it retires, and a retired or idle generation is closed when its last lease is
 * released (after a short grace period for idle ones), which drops its roots. If a roots
 * connection dies while leases are held, their paths are rooted again on a new one.
 */
import type { DaemonClient } from '../daemon/client.js';
import type { DaemonConnection } from '../daemon/connection.js';
import { addTempRootOp } from '../daemon/ops.js';
import type { Logger } from '../util/log.js';

export interface TempRootsLease {
  readonly paths: readonly string[];
  /** Set when the roots could not be re-established after their connection died. */
  readonly lost: Error | undefined;
  /** Let the paths go (idempotent). */
  release(): void;
}

export interface TempRootsOptions {
  /** Rooted paths after which a roots connection takes no new leases; default 10,000. */
  recycleAfter?: number;
  /** How long an idle roots connection is kept for the next lease; default 5 s. */
  idleMs?: number;
  logger: Logger;
}

class Lease implements TempRootsLease {
  lost: Error | undefined;
  released = false;
  constructor(
    readonly paths: readonly string[],
    public gen: Generation,
    private readonly keeper: TempRoots,
  ) {}
  release(): void {
    if (this.released) return;
    this.released = true;
    this.keeper.released(this);
  }
}

interface Generation {
  conn: Promise<DaemonConnection>;
  rooted: Set<string>;
  leases: Set<Lease>;
  retiring: boolean;
  idleTimer: NodeJS.Timeout | undefined;
  closed: boolean;
}

export class TempRoots {
  private current: Generation | undefined;
  private readonly gens = new Set<Generation>();
  private readonly recycleAfter: number;
  private readonly idleMs: number;
  private closed = false;

  constructor(
    private readonly client: DaemonClient,
    private readonly opts: TempRootsOptions,
  ) {
    this.recycleAfter = opts.recycleAfter ?? 10_000;
    this.idleMs = opts.idleMs ?? 5000;
  }

  /** Root `paths` (already validated) until the lease is released. */
  async hold(paths: readonly string[]): Promise<TempRootsLease> {
    const gen = this.generation();
    const lease = new Lease([...paths], gen, this);
    this.attach(gen, lease);
    try {
      await this.root(gen, lease.paths);
    } catch (e) {
      lease.release();
      throw e;
    }
    return lease;
  }

  released(lease: Lease): void {
    const gen = lease.gen;
    gen.leases.delete(lease);
    if (gen.leases.size > 0) return;
    if (gen.retiring || this.closed) {
      void this.retire(gen);
    } else {
      gen.idleTimer = setTimeout(() => void this.retire(gen), this.idleMs);
      gen.idleTimer.unref();
    }
  }

  /** Drop every roots connection (after running AddTempRoot calls finish). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.gens].map((g) => this.retire(g)));
  }

  destroy(): void {
    this.closed = true;
    for (const g of [...this.gens]) {
      g.closed = true;
      clearTimeout(g.idleTimer);
      this.gens.delete(g);
      void g.conn.then(
        (c) => c.destroy(),
        () => {},
      );
    }
    this.current = undefined;
  }

  private generation(): Generation {
    const cur = this.current;
    if (cur && !cur.retiring && !cur.closed) return cur;
    const gen: Generation = {
      conn: this.client.openConnection(),
      rooted: new Set(),
      leases: new Set(),
      retiring: false,
      idleTimer: undefined,
      closed: false,
    };
    this.gens.add(gen);
    this.current = gen;
    gen.conn.then(
      (c) => void c.whenGone.then(() => this.connectionGone(gen)),
      () => this.forget(gen),
    );
    return gen;
  }

  private attach(gen: Generation, lease: Lease): void {
    clearTimeout(gen.idleTimer);
    gen.idleTimer = undefined;
    lease.gen = gen;
    gen.leases.add(lease);
  }

  private async root(gen: Generation, paths: readonly string[]): Promise<void> {
    const conn = await gen.conn;
    const todo = paths.filter((p) => !gen.rooted.has(p));
    await Promise.all(todo.map((p) => conn.call(addTempRootOp(p, this.client.storeDir))));
    for (const p of todo) gen.rooted.add(p);
    if (gen.rooted.size >= this.recycleAfter) gen.retiring = true;
  }

  private async retire(gen: Generation): Promise<void> {
    if (gen.closed) return;
    gen.closed = true;
    clearTimeout(gen.idleTimer);
    if (this.current === gen) this.current = undefined;
    this.gens.delete(gen);
    const conn = await gen.conn.catch(() => undefined);
    await conn?.close().catch(() => {});
  }

  private forget(gen: Generation): void {
    gen.closed = true;
    this.gens.delete(gen);
    if (this.current === gen) this.current = undefined;
  }

  /** The connection died under live leases: root their paths again on a new one. */
  private connectionGone(gen: Generation): void {
    if (gen.closed) return;
    this.forget(gen);
    const orphans = [...gen.leases];
    if (orphans.length === 0 || this.closed) return;
    this.opts.logger.warn('nix-daemon roots connection lost; adding the temp roots again', {
      leases: orphans.length,
    });
    const next = this.generation();
    for (const l of orphans) this.attach(next, l);
    const paths = [...new Set(orphans.flatMap((l) => l.paths))];
    this.root(next, paths).catch((e: Error) => {
      this.opts.logger.error(
        'could not re-add temp roots; paths may be garbage-collected during upload',
        {
          reason: e.message,
        },
      );
      for (const l of orphans) l.lost = e;
    });
  }
}
