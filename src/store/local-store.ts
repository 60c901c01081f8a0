/**
 * The local Nix store as Loft sees it, over the nix-daemon worker protocol (socket or
 * `nix-daemon --stdio`): path info (cached), closures, verified NAR streams, temp roots,
 * and turning user paths into store paths.
 *
 * NAR streams here come from the daemon's NarFromPath, verified against the registered
 * narHash and narSize. Pushes read most NARs from disk instead, in src/pack's worker
 * threads. Per thread that is not faster (bench/daemon-nar.ts, verified MB/s, on two
 * days: one 256 MiB file 905/1048 through the daemon vs 1150/850 from disk; 20,000 files
 * of 8 KiB 311/582 vs 162/256), but the NAR bytes, their hashing and their compression stay
 * off this thread and spread over every core: a 201-path 190 MB push into a directory took
 * 1.53-1.64 s that way and 1.78-1.91 s with every NAR through the daemon.
 * This stream is the fallback: for xz, and where the store cannot be read directly (no
 * permission, a store on another machine). Both give the bytes `nix-store --dump` gives.
 */
import type { Readable } from 'node:stream';
import { DaemonClient, type DaemonClientOptions } from '../daemon/client.js';
import { DaemonClosedError } from '../daemon/errors.js';
import type { HandshakeResult } from '../daemon/handshake.js';
import { supportsRealisations } from '../daemon/ops.js';
import type { Realisation } from '../nix/realisation.js';
import { parseStorePath } from '../nix/store-path.js';
import type { Logger } from '../util/log.js';
import { nullLogger } from '../util/log.js';
import { walkClosure, topoSort, type KnownPathInfos } from './closure.js';
import { NarMismatchError, PathNotValidError, StoreOptionError } from './errors.js';
import { NarVerifier, type NarExpectation } from './nar-verify.js';
import { fromDaemonPathInfo, type PathInfo } from './path-info.js';
import { resolveStorePath } from './resolve-path.js';
import { TempRoots, type TempRootsLease } from './temp-roots.js';

export type { PathInfo } from './path-info.js';
export type { TempRootsLease } from './temp-roots.js';

export interface LocalStoreOptions {
  /** 'auto' (default): NIX_DAEMON_SOCKET_PATH, the default socket, then `nix-daemon --stdio`. */
  transport?: DaemonClientOptions['transport'];
  socketPath?: string;
  /** Command for the stdio transport; default `nix-daemon --stdio`. */
  stdioCommand?: readonly string[];
  /** Environment for NIX_DAEMON_SOCKET_PATH and NIX_STATE_DIR (default process.env). */
  env?: Record<string, string | undefined>;
  /** Default /nix/store. */
  storeDir?: string;
  /** Pooled daemon connections; default 4 (NAR streams use at most all but one). */
  maxConnections?: number;
  /** Path infos kept in memory; default 100,000 (about 50 MB at most). */
  pathInfoCacheSize?: number;
  /** Temp roots per roots connection before a fresh one is used; default 10,000. */
  rootsRecycleAfter?: number;
  /** How long a roots connection with no lease is kept for the next one; default 5000 ms. */
  rootsIdleMs?: number;
  logger?: Logger;
}

/** QueryValidPaths requests are split into batches of this many paths. */
const VALID_PATHS_BATCH = 2000;

export class LocalStore {
  readonly storeDir: string;
  private readonly cache = new Map<string, PathInfo>();
  private readonly inFlight = new Map<string, Promise<PathInfo | undefined>>();
  private readonly cacheSize: number;
  private readonly roots: TempRoots;
  private readonly logger: Logger;
  private state: 'open' | 'closing' | 'closed' = 'open';
  private active = 0;
  private idle: (() => void) | undefined;
  private closed: Promise<void> | undefined;

  private constructor(
    private readonly daemon: DaemonClient,
    opts: LocalStoreOptions,
  ) {
    this.storeDir = daemon.storeDir;
    this.logger = opts.logger ?? nullLogger;
    this.cacheSize = opts.pathInfoCacheSize ?? 100_000;
    this.roots = new TempRoots(daemon, {
      recycleAfter: opts.rootsRecycleAfter,
      idleMs: opts.rootsIdleMs,
      logger: this.logger,
    });
  }

  /** Connect to the daemon; fails early with a clear error if it cannot be reached. */
  static async open(opts: LocalStoreOptions = {}): Promise<LocalStore> {
    for (const [name, v] of [
      ['pathInfoCacheSize', opts.pathInfoCacheSize],
      ['rootsRecycleAfter', opts.rootsRecycleAfter],
    ] as const) {
      if (v !== undefined && (!Number.isInteger(v) || v < 1)) {
        throw new StoreOptionError(name, v, 'a positive integer');
      }
    }
    const idle = opts.rootsIdleMs;
    if (idle !== undefined && (!Number.isFinite(idle) || idle < 0)) {
      throw new StoreOptionError('rootsIdleMs', idle, 'a number of milliseconds, 0 or more');
    }
    const daemon = await DaemonClient.open({
      transport: opts.transport,
      socketPath: opts.socketPath,
      stdioCommand: opts.stdioCommand,
      env: opts.env,
      storeDir: opts.storeDir,
      maxConnections: opts.maxConnections,
      logger: opts.logger,
    });
    return new LocalStore(daemon, opts);
  }

  /** What the daemon said in the handshake (protocol, Nix version, trust). */
  get daemonInfo(): HandshakeResult {
    return this.daemon.daemonInfo;
  }

  /** The daemon endpoint in use: a socket path or the stdio command with its pid. */
  get endpoint(): string {
    return this.daemon.endpoint;
  }

  /** Whether the daemon can be asked for realisations (protocol 1.27, Nix 2.4, and later). */
  get supportsRealisations(): boolean {
    return supportsRealisations(this.daemon.daemonInfo.version);
  }

  /** A derivation output's realisation (`sha256:<hex>!<output>`), or undefined. */
  queryRealisation(id: string): Promise<Realisation | undefined> {
    return this.op(() => this.daemon.queryRealisation(id));
  }

  /** Path info of a valid path; PathNotValidError otherwise. Cached. */
  pathInfo(path: string): Promise<PathInfo> {
    return this.op(async () => {
      const info = await this.cachedPathInfo(path);
      if (!info) throw new PathNotValidError(path);
      return info;
    });
  }

  /** Path info, or undefined when the path is not valid. Cached (only valid paths). */
  queryPathInfo(path: string): Promise<PathInfo | undefined> {
    return this.op(() => this.cachedPathInfo(path));
  }

  /** Path infos in the order given; PathNotValidError for the first invalid one. */
  pathInfos(paths: readonly string[]): Promise<PathInfo[]> {
    return Promise.all(paths.map((p) => this.pathInfo(p)));
  }

  /** The valid subset of `paths`, in the order given. */
  validPaths(paths: readonly string[]): Promise<string[]> {
    return this.op(() => this.validSubset(paths));
  }

  private async validSubset(paths: readonly string[]): Promise<string[]> {
    const unique = [...new Set(paths)];
    for (const p of unique) parseStorePath(p, this.storeDir);
    const batches: string[][] = [];
    for (let i = 0; i < unique.length; i += VALID_PATHS_BATCH) {
      batches.push(unique.slice(i, i + VALID_PATHS_BATCH));
    }
    const valid = new Set(
      (await Promise.all(batches.map((b) => this.daemon.queryValidPaths(b)))).flat(),
    );
    return unique.filter((p) => valid.has(p));
  }

  isValidPath(path: string): Promise<boolean> {
    return this.op(() => this.daemon.isValidPath(path));
  }

  allValidPaths(): Promise<string[]> {
    return this.op(() => this.daemon.queryAllValidPaths());
  }

  /** The valid store path with this 32-character hash part, if any. */
  pathFromHashPart(hashPart: string): Promise<string | undefined> {
    return this.op(() => this.daemon.queryPathFromHashPart(hashPart));
  }

  /**
   * The closure of `paths` (every path they reference, transitively, and themselves) in
   * one pass, ordered so that each path comes after all it references. PathNotValidError
   * if a root is not valid. Path infos `known` gives for non-roots are used as they are.
   */
  closure(paths: readonly string[], known?: KnownPathInfos): Promise<PathInfo[]> {
    return this.op(async () => {
      const roots = [...new Set(paths)];
      for (const p of roots) parseStorePath(p, this.storeDir);
      const infos = await walkClosure(
        roots,
        (p) =>
          this.cachedPathInfo(p).then((info) => info ?? Promise.reject(new PathNotValidError(p))),
        known,
      );
      return topoSort(infos);
    });
  }

  /**
   * The NAR of `path`, checked against the narHash and narSize registered now (queried
   * afresh, not from the cache) and, if given, against `expect` (the path info the caller
   * is about to publish). On any difference the stream errors with NarMismatchError
   * instead of ending. Destroy the stream to abandon it.
   *
   * `hashedByCaller` (with `expect`): the caller hashes the bytes itself and must not
   * publish them unless they match `expect`; sizes are still checked here. The upload
   * pipeline uses it to hash in the compressor's worker thread instead of twice.
   */
  narStream(
    path: string,
    opts: { expect?: NarExpectation; hashedByCaller?: boolean } = {},
  ): Readable {
    if (opts.hashedByCaller && !opts.expect) {
      throw new Error('internal: narStream({ hashedByCaller }) needs `expect` to hash against');
    }
    // The verifier is the stream handed out; the path info it checks against arrives first.
    const out = new NarVerifier(path, undefined, opts.hashedByCaller);
    let source: Readable | undefined;
    const start = async () => {
      parseStorePath(path, this.storeDir);
      const info = await this.fetchPathInfo(path);
      if (!info) throw new PathNotValidError(path);
      const exp = opts.expect;
      if (exp && (exp.narHash !== info.narHash || exp.narSize !== info.narSize)) {
        throw new NarMismatchError(path, {
          expectedHash: exp.narHash,
          expectedSize: exp.narSize,
          actualHash: info.narHash,
          actualSize: info.narSize,
          against: 'caller',
        });
      }
      if (out.destroyed) return;
      source = await this.daemon.narFromPath(path);
      if (out.destroyed) {
        source.destroy();
        return;
      }
      out.expect(info);
      source.once('error', (e) => out.destroy(e));
      source.pipe(out);
    };
    // The stream counts as running work (for close()) until it is done or abandoned.
    this.op(
      () =>
        new Promise<void>((resolve) => {
          out.once('close', () => {
            source?.destroy();
            resolve();
          });
          start().catch((e: unknown) => out.destroy(e as Error));
        }),
    ).catch((e: unknown) => out.destroy(e as Error));
    return out;
  }

  /**
   * Keep `paths` from garbage collection until the lease is released. Roots are held on a
   * dedicated daemon connection, recycled when no lease needs it.
   */
  holdTempRoots(paths: readonly string[]): Promise<TempRootsLease> {
    return this.op(async () => {
      for (const p of paths) parseStorePath(p, this.storeDir);
      return this.roots.hold(paths);
    });
  }

  /**
   * A user's path to a valid store path: follows symlinks such as ./result, drops a
   * sub-path inside a store path, rejects paths outside the store (PathOutsideStoreError)
   * or not valid (PathNotValidError).
   */
  resolvePath(userPath: string, opts: { cwd?: string } = {}): Promise<string> {
    return this.op(async () => {
      const path = await resolveStorePath(userPath, this.storeDir, opts.cwd ?? process.cwd());
      if (!(await this.daemon.isValidPath(path))) throw new PathNotValidError(path);
      return path;
    });
  }

  /**
   * Refuse new work, let running operations finish (a closure walk, a NAR stream until its
   * reader is done with it), then close every connection, which drops the temp roots.
   * Idempotent.
   */
  close(): Promise<void> {
    if (this.closed) return this.closed;
    this.state = 'closing';
    this.closed = (async () => {
      if (this.active > 0) await new Promise<void>((r) => (this.idle = r));
      this.state = 'closed';
      await Promise.all([this.roots.close(), this.daemon.close()]);
    })();
    return this.closed;
  }

  /** Abort running operations and close every connection now. Idempotent. */
  destroy(): void {
    this.state = 'closed';
    this.roots.destroy();
    this.daemon.destroy();
    this.idle?.();
  }

  /** Run a public operation, counted as running work for close(). */
  private op<T>(f: () => Promise<T>): Promise<T> {
    if (this.state !== 'open') return Promise.reject(new DaemonClosedError(this.state));
    this.active++;
    const done = () => {
      if (--this.active === 0) this.idle?.();
    };
    let p: Promise<T>;
    try {
      p = f();
    } catch (e) {
      done();
      return Promise.reject(e);
    }
    p.then(done, done);
    return p;
  }

  private cachedPathInfo(path: string): Promise<PathInfo | undefined> {
    const hit = this.cache.get(path);
    return hit ? Promise.resolve(hit) : this.fetchPathInfo(path);
  }

  private fetchPathInfo(path: string): Promise<PathInfo | undefined> {
    const running = this.inFlight.get(path);
    if (running) return running;
    const p = this.daemon.queryPathInfo(path).then(
      (d) => {
        this.inFlight.delete(path);
        if (!d) {
          this.cache.delete(path);
          return undefined;
        }
        const info = fromDaemonPathInfo(d);
        this.remember(info);
        return info;
      },
      (e: unknown) => {
        this.inFlight.delete(path);
        throw e;
      },
    );
    this.inFlight.set(path, p);
    return p;
  }

  private remember(info: PathInfo): void {
    this.cache.delete(info.path);
    this.cache.set(info.path, info);
    if (this.cache.size > this.cacheSize) {
      // Oldest first (Map keeps insertion order).
      this.cache.delete(this.cache.keys().next().value!);
    }
  }
}
