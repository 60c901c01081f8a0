/**
 * Byte streams to a nix-daemon: its Unix socket, or a `nix-daemon --stdio` child (root and
 * single-user installs, where the child serves the local store itself). `auto` tries
 * NIX_DAEMON_SOCKET_PATH, then the default socket, then stdio when there is no socket.
 */
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { userInfo } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from '../util/log.js';
import { nullLogger } from '../util/log.js';
import { sleep, unrefSleep } from '../util/limit.js';
import {
  DaemonBusyError,
  DaemonConnectionError,
  DaemonOptionError,
  DaemonPermissionError,
  DaemonSocketMissingError,
  DaemonSpawnError,
} from './errors.js';

export const DEFAULT_SOCKET_PATH = '/nix/var/nix/daemon-socket/socket';

/** Nix's own default: `$NIX_STATE_DIR/daemon-socket/socket`, NIX_STATE_DIR being /nix/var/nix. */
export function defaultSocketPath(env: Record<string, string | undefined>): string {
  const stateDir = env.NIX_STATE_DIR;
  return stateDir ? `${stateDir.replace(/\/+$/, '')}/daemon-socket/socket` : DEFAULT_SOCKET_PATH;
}
export const DEFAULT_STDIO_COMMAND: readonly string[] = ['nix-daemon', '--stdio'];

export type TransportKind = 'auto' | 'socket' | 'stdio';

export interface Transport {
  readonly kind: 'socket' | 'stdio';
  /** Where this goes, for messages: a socket path or "nix-daemon --stdio (pid N)". */
  readonly endpoint: string;
  readonly readable: Readable;
  readonly writable: Writable;
  /**
   * Resolves once the peer is gone, with what is known about why (a child's exit status
   * and the tail of its stderr); undefined for a socket.
   */
  readonly gone: Promise<string | undefined>;
  /**
   * Finish writing and hang up. A socket closes as soon as its end is sent, without waiting
   * for the daemon to hang up too; a child process is waited for (bounded), then killed.
   */
  end(): Promise<void>;
  /** Cut the connection now. */
  destroy(): void;
}

export interface TransportOptions {
  transport?: TransportKind;
  /**
   * A socket path; default NIX_DAEMON_SOCKET_PATH, then the default socket
   * (`$NIX_STATE_DIR/daemon-socket/socket`, /nix/var/nix/daemon-socket/socket).
   */
  socketPath?: string;
  /** The command for the stdio transport; default `nix-daemon --stdio`. */
  stdioCommand?: readonly string[];
  /** Environment to read NIX_DAEMON_SOCKET_PATH and NIX_STATE_DIR from (default process.env). */
  env?: Record<string, string | undefined>;
  logger?: Logger;
}

export function currentUser(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}

class SocketTransport implements Transport {
  readonly kind = 'socket';
  readonly gone: Promise<string | undefined>;
  constructor(
    readonly endpoint: string,
    private readonly socket: Socket,
  ) {
    this.gone = new Promise((resolve) => socket.once('close', () => resolve(undefined)));
  }
  get readable(): Readable {
    return this.socket;
  }
  get writable(): Writable {
    return this.socket;
  }
  async end(): Promise<void> {
    if (this.socket.destroyed) return;
    // The daemon's worker sees the end of input and drops this connection's temp roots
    // whoever waits, so waiting for it to close its side too would only keep the caller
    // (a CLI about to exit) idle. Bounded: a daemon that stops reading must not hold us.
    const flushed = new Promise<void>((resolve) => this.socket.end(() => resolve()));
    await Promise.race([flushed, this.gone, unrefSleep(2000)]);
    this.socket.destroy();
  }
  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * How long a connect may keep meeting a full listen queue. nix-daemon listens with a backlog
 * of 5 and forks per connection, so a pool opening a dozen connections at once sees EAGAIN
 * for a few milliseconds; that is "try again", not a failure.
 */
const BACKLOG_RETRY_MS = 2000;

/** Connect to a daemon socket; errors say whether it is missing or forbidden. */
export async function connectSocket(path: string): Promise<Transport> {
  const deadline = Date.now() + BACKLOG_RETRY_MS;
  for (let wait = 2; ; wait = Math.min(wait * 2, 100)) {
    try {
      return await connectOnce(path);
    } catch (e) {
      if (!(e instanceof DaemonBusyError) || Date.now() + wait > deadline) throw e;
      await sleep(wait);
    }
  }
}

function connectOnce(path: string): Promise<Transport> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    const onError = (e: NodeJS.ErrnoException) => {
      socket.destroy();
      reject(socketError(path, e));
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      socket.setNoDelay?.(true);
      resolve(new SocketTransport(path, socket));
    });
  });
}

function socketError(path: string, e: NodeJS.ErrnoException): Error {
  switch (e.code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return new DaemonSocketMissingError(path, 'no such socket', { cause: e });
    case 'ECONNREFUSED':
      return new DaemonSocketMissingError(
        path,
        'nothing is listening on it (is the daemon stopped?)',
        {
          cause: e,
        },
      );
    case 'EACCES':
    case 'EPERM':
      return new DaemonPermissionError(path, currentUser(), { cause: e });
    case 'EAGAIN':
      return new DaemonBusyError(path, BACKLOG_RETRY_MS, { cause: e });
    default:
      return new DaemonConnectionError(path, e.message, { cause: e });
  }
}

const STDERR_TAIL = 4096;

/** Start `nix-daemon --stdio` and speak the protocol over its stdin and stdout. */
export function spawnStdio(command: readonly string[] = DEFAULT_STDIO_COMMAND): Promise<Transport> {
  const [cmd, ...args] = command;
  if (cmd === undefined)
    throw new DaemonOptionError('stdioCommand', command, 'a non-empty command');
  const shown = command.join(' ');
  return new Promise((resolve, reject) => {
    // Its own process group: a terminal's Ctrl-C goes to Loft alone, which drains uploads
    // over this connection and then stops the child itself (end() or destroy()).
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => {
      stderr = (stderr + s).slice(-STDERR_TAIL);
    });
    // EPIPE on a dead child is reported through the reader (the stdout end), not here.
    child.stdin.on('error', () => {});
    const gone = new Promise<string | undefined>((res) => {
      child.once('close', (code, signal) => {
        const how = signal ? `was killed by ${signal}` : `exited with status ${code}`;
        const tail = stderr.trim();
        res(`${shown} ${how}${tail ? `; its stderr: ${tail}` : ''}`);
      });
    });
    child.once('error', (e: NodeJS.ErrnoException) => {
      reject(
        e.code === 'ENOENT'
          ? new DaemonSpawnError(shown, `${cmd} is not on PATH`, { cause: e })
          : new DaemonSpawnError(shown, e.message, { cause: e }),
      );
    });
    child.once('spawn', () => {
      // Later errors (a failed kill) must not crash the process; the reader reports the end.
      child.on('error', () => {});
      child.stderr.on('error', () => {});
      const endpoint = `${shown} (pid ${child.pid})`;
      resolve({
        kind: 'stdio',
        endpoint,
        readable: child.stdout,
        writable: child.stdin,
        gone,
        async end() {
          if (child.exitCode !== null || child.signalCode !== null) return;
          child.stdin.end();
          await Promise.race([gone, unrefSleep(2000)]);
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        },
        destroy() {
          if (child.exitCode !== null || child.signalCode !== null) return;
          child.kill('SIGTERM');
          // A daemon stuck in a write may ignore SIGTERM for a while; do not leave it behind.
          setTimeout(() => {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
          }, 2000).unref();
        },
      });
    });
  });
}

/**
 * A factory for transports. With `auto`, the first call picks the transport (and logs the
 * choice); later calls reuse it, so a pool does not probe for every connection.
 */
export function createConnector(opts: TransportOptions = {}): () => Promise<Transport> {
  const kind = opts.transport ?? 'auto';
  if (kind !== 'auto' && kind !== 'socket' && kind !== 'stdio') {
    throw new DaemonOptionError('transport', kind, '"auto", "socket" or "stdio"');
  }
  if (
    opts.socketPath !== undefined &&
    (typeof opts.socketPath !== 'string' || opts.socketPath === '')
  ) {
    throw new DaemonOptionError(
      'socketPath',
      opts.socketPath,
      'a non-empty path to the daemon socket',
    );
  }
  const env = opts.env ?? process.env;
  const logger = opts.logger ?? nullLogger;
  const stdioCommand = opts.stdioCommand ?? DEFAULT_STDIO_COMMAND;
  const envSocket = env.NIX_DAEMON_SOCKET_PATH || undefined;
  const fallback = defaultSocketPath(env);
  const primary = opts.socketPath ?? envSocket ?? fallback;

  if (kind === 'socket') return () => connectSocket(primary);
  if (kind === 'stdio') return () => spawnStdio(stdioCommand);

  let chosen: (() => Promise<Transport>) | undefined;
  return async () => {
    if (chosen) return chosen();
    const candidates = [...new Set([primary, fallback])];
    const missing: DaemonSocketMissingError[] = [];
    for (const path of candidates) {
      try {
        const t = await connectSocket(path);
        logger.debug('nix-daemon transport: socket', { socket: path });
        chosen = () => connectSocket(path);
        return t;
      } catch (e) {
        // A forbidden socket is the answer (stdio would not help a non-root user); a missing one
        // means there may be no daemon at all.
        if (!(e instanceof DaemonSocketMissingError)) throw e;
        if (path === primary && primary !== fallback) {
          logger.warn('nix-daemon socket missing, trying the next one', {
            socket: path,
            reason: e.message,
          });
        }
        missing.push(e);
      }
    }
    try {
      const t = await spawnStdio(stdioCommand);
      logger.debug('nix-daemon transport: stdio', { command: stdioCommand.join(' ') });
      chosen = () => spawnStdio(stdioCommand);
      return t;
    } catch (e) {
      if (!(e instanceof DaemonSpawnError)) throw e;
      throw new DaemonSocketMissingError(
        candidates.join(' or '),
        `${missing.map((m) => m.message.replace(/^cannot reach the nix-daemon at /, '')).join('; ')}; and ${e.message}`,
        { cause: e },
      );
    }
  };
}
