/**
 * The daemon client: a transport choice, a pool of connections and the operations, with
 * paths checked before they are sent. Temp roots belong to a connection, so they are not
 * offered through the pool: `openConnection()` gives a dedicated one for that.
 */
import type { Readable } from 'node:stream';
import { DEFAULT_STORE_DIR, validateStoreDir } from '../nix/store-path.js';
import type { Realisation } from '../nix/realisation.js';
import type { Logger } from '../util/log.js';
import { nullLogger } from '../util/log.js';
import { DaemonConnection } from './connection.js';
import { DaemonClosedError } from './errors.js';
import type { HandshakeResult } from './handshake.js';
import {
  addSignaturesOp,
  isValidPathOp,
  queryAllValidPathsOp,
  queryPathFromHashPartOp,
  queryPathInfoOp,
  queryRealisationOp,
  queryValidPathsOp,
  type DaemonPathInfo,
} from './ops.js';
import { DaemonPool } from './pool.js';
import { createConnector, type Transport, type TransportOptions } from './transport.js';

export interface DaemonClientOptions extends TransportOptions {
  /** The store directory paths are checked against; default /nix/store. */
  storeDir?: string;
  /** Pooled connections at most; default 4. */
  maxConnections?: number;
  /** Requests in flight per connection at most; default 32. */
  maxPipeline?: number;
  logger?: Logger;
}

export class DaemonClient {
  readonly storeDir: string;
  private readonly pool: DaemonPool;
  private readonly dedicated = new Set<DaemonConnection>();
  private readonly openConn: () => Promise<DaemonConnection>;
  /** Transports whose handshake is still running (the pool opens connections ahead). */
  private readonly opening = new Set<Transport>();
  private firstInfo: HandshakeResult | undefined;
  private endpointSeen: string | undefined;
  private state: 'open' | 'closed' = 'open';

  private constructor(opts: DaemonClientOptions) {
    this.storeDir = validateStoreDir(opts.storeDir ?? DEFAULT_STORE_DIR);
    const logger = opts.logger ?? nullLogger;
    const connector = createConnector(opts);
    this.openConn = async () => {
      const transport = await connector();
      if (this.state !== 'open') {
        transport.destroy();
        throw new DaemonClosedError('closed');
      }
      this.opening.add(transport);
      let conn: DaemonConnection;
      try {
        conn = await DaemonConnection.open(transport, { storeDir: this.storeDir, logger });
      } finally {
        this.opening.delete(transport);
      }
      this.firstInfo ??= conn.info;
      this.endpointSeen ??= conn.endpoint;
      return conn;
    };
    this.pool = new DaemonPool({
      connect: this.openConn,
      maxConnections: opts.maxConnections,
      maxPipeline: opts.maxPipeline,
      logger,
    });
  }

  /** Connect (one connection, so a missing socket or a refusal shows up here). */
  static async open(opts: DaemonClientOptions = {}): Promise<DaemonClient> {
    const client = new DaemonClient(opts);
    try {
      await client.pool.warmUp();
    } catch (e) {
      client.destroy();
      throw e;
    }
    return client;
  }

  /** The first connection's handshake: protocol version, daemon Nix version, trust. */
  get daemonInfo(): HandshakeResult {
    return this.firstInfo!;
  }

  /** Where the first connection went (socket path or stdio command). */
  get endpoint(): string {
    return this.endpointSeen ?? '';
  }

  /** Live pooled connections. */
  get connections(): number {
    return this.pool.size;
  }

  isValidPath(path: string): Promise<boolean> {
    return this.guard(() => this.pool.run(isValidPathOp(path, this.storeDir)));
  }

  /** The subset of `paths` that is valid. */
  queryValidPaths(paths: readonly string[]): Promise<string[]> {
    return this.guard(() => this.pool.run(queryValidPathsOp(paths, this.storeDir)));
  }

  queryAllValidPaths(): Promise<string[]> {
    return this.guard(() => this.pool.run(queryAllValidPathsOp()));
  }

  /** undefined when the path is not valid. */
  queryPathInfo(path: string): Promise<DaemonPathInfo | undefined> {
    return this.guard(() => this.pool.run(queryPathInfoOp(path, this.storeDir)));
  }

  queryPathFromHashPart(hashPart: string): Promise<string | undefined> {
    return this.guard(() => this.pool.run(queryPathFromHashPartOp(hashPart)));
  }

  /** A derivation output's realisation; check `supportsRealisations(version)` first. */
  queryRealisation(id: string): Promise<Realisation | undefined> {
    return this.guard(() => this.pool.run(queryRealisationOp(id)));
  }

  /** Needs a daemon that trusts us. */
  addSignatures(path: string, sigs: readonly string[]): Promise<void> {
    return this.guard(() => this.pool.run(addSignaturesOp(path, sigs, this.storeDir)));
  }

  /** The NAR of a valid path, unverified (the store layer checks it against narHash). */
  narFromPath(path: string): Promise<Readable> {
    return this.guard(() => this.pool.narFromPath(path));
  }

  /**
   * A connection outside the pool, for state that lives with a connection (temp roots).
   * Closed with the client.
   */
  async openConnection(): Promise<DaemonConnection> {
    if (this.state !== 'open') throw new DaemonClosedError('closed');
    const conn = await this.openConn();
    if (this.state !== 'open') {
      conn.destroy();
      throw new DaemonClosedError('closed');
    }
    this.dedicated.add(conn);
    conn.setListener({ settled() {}, gone: (c) => this.dedicated.delete(c) });
    return conn;
  }

  /** Let running work finish, then hang up. Idempotent. */
  async close(): Promise<void> {
    this.state = 'closed';
    // A handshake still running serves only queued work; without any, it would keep the
    // process alive until the daemon's worker answers, to be hung up on then.
    if (this.pool.queued === 0) this.abandonOpening();
    await Promise.all([this.pool.close(), ...[...this.dedicated].map((c) => c.close())]);
    this.abandonOpening();
  }

  /** Hang up now; running work fails with DaemonClosedError. Idempotent. */
  destroy(): void {
    this.state = 'closed';
    this.pool.destroy();
    for (const c of [...this.dedicated]) c.destroy();
    this.dedicated.clear();
    this.abandonOpening();
  }

  private abandonOpening(): void {
    for (const t of this.opening) t.destroy();
    this.opening.clear();
  }

  private guard<T>(f: () => Promise<T>): Promise<T> {
    try {
      return f();
    } catch (e) {
      return Promise.reject(e);
    }
  }
}
