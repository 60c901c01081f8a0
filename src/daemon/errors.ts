/**
 * Errors of the nix-daemon client. Each failure a user can meet says what happened, the
 * value involved (socket path, daemon version, the daemon's own message) and what to do.
 */
import { LoftError, type LoftErrorOptions } from '../util/errors.js';

const JOURNAL_HINT = 'the daemon log says more (`journalctl -u nix-daemon` on systemd machines)';

/** The peer broke the protocol: a bad magic, an oversized or malformed frame. */
export class DaemonProtocolError extends LoftError {
  constructor(message: string, options: LoftErrorOptions = {}) {
    super('DAEMON_PROTOCOL', 'format', `nix-daemon protocol error: ${message}`, {
      hint:
        options.hint ??
        'the peer does not speak the Nix worker protocol as expected; check that the socket belongs to a nix-daemon',
      cause: options.cause,
    });
  }
}

/** The byte stream ended or broke while a message was expected. */
export class DaemonConnectionError extends LoftError {
  constructor(
    readonly endpoint: string,
    reason: string,
    options: LoftErrorOptions = {},
  ) {
    super(
      'DAEMON_CONNECTION_LOST',
      'environment',
      `connection to the nix-daemon (${endpoint}) lost: ${reason}`,
      {
        hint:
          options.hint ??
          `the next operation opens a new connection; if this repeats, ${JOURNAL_HINT}`,
        cause: options.cause,
      },
    );
  }
}

/** No daemon socket to connect to (and no `nix-daemon --stdio` to fall back on). */
export class DaemonSocketMissingError extends LoftError {
  constructor(
    readonly socketPath: string,
    reason: string,
    options: LoftErrorOptions = {},
  ) {
    super(
      'DAEMON_SOCKET_MISSING',
      'environment',
      `cannot reach the nix-daemon at ${socketPath}: ${reason}`,
      {
        hint:
          options.hint ??
          'start the daemon (`systemctl start nix-daemon`), or set NIX_DAEMON_SOCKET_PATH to its socket; on a single-user install use the stdio transport (`nix-daemon --stdio`)',
        cause: options.cause,
      },
    );
  }
}

/** The daemon's listen queue stayed full: it accepts no new connections. */
export class DaemonBusyError extends LoftError {
  constructor(
    readonly socketPath: string,
    waitedMs: number,
    options: LoftErrorOptions = {},
  ) {
    super(
      'DAEMON_BUSY',
      'environment',
      `the nix-daemon at ${socketPath} accepted no new connection for ${waitedMs} ms (its listen queue stayed full, EAGAIN)`,
      {
        hint:
          options.hint ??
          `the daemon is overloaded or stuck; lower upload_threads, or see why: ${JOURNAL_HINT}`,
        cause: options.cause,
      },
    );
  }
}

/** The socket exists but this user may not connect to it. */
export class DaemonPermissionError extends LoftError {
  constructor(
    readonly socketPath: string,
    readonly user: string,
    options: LoftErrorOptions = {},
  ) {
    super(
      'DAEMON_PERMISSION_DENIED',
      'environment',
      `permission denied connecting to the nix-daemon socket ${socketPath} as user ${user}`,
      {
        hint:
          options.hint ??
          `add ${user} to the group that may use the socket (\`nix-users\` on most installs: \`usermod -aG nix-users ${user}\`, then log in again), and make sure \`allowed-users\` in nix.conf admits it`,
        cause: options.cause,
      },
    );
  }
}

/** The daemon accepted the connection, then closed it before the handshake finished. */
export class DaemonRejectedError extends LoftError {
  constructor(
    readonly endpoint: string,
    readonly user: string,
    detail: string,
    options: LoftErrorOptions = {},
  ) {
    super(
      'DAEMON_REJECTED',
      'environment',
      `the nix-daemon (${endpoint}) closed the connection during the handshake${detail ? `: ${detail}` : ''}`,
      {
        hint:
          options.hint ??
          `the daemon does this when user ${user} is not in \`allowed-users\` (or \`trusted-users\`) in nix.conf; ${JOURNAL_HINT}`,
        cause: options.cause,
      },
    );
  }
}

/** The daemon speaks a protocol version this client does not support. */
export class DaemonVersionError extends LoftError {
  constructor(
    readonly endpoint: string,
    readonly daemonVersion: string,
    readonly minimum: string,
  ) {
    super(
      'DAEMON_VERSION_UNSUPPORTED',
      'environment',
      `the nix-daemon (${endpoint}) speaks worker protocol ${daemonVersion}; Loft needs ${minimum} or newer`,
      {
        hint: 'upgrade Nix to 2.3 or newer (protocol 1.21), or point Loft at a newer daemon',
      },
    );
  }
}

/** One trace line of a structured daemon error. */
export interface DaemonErrorTrace {
  hint: string;
}

/**
 * The daemon reported that an operation failed (STDERR_ERROR). The connection stays usable.
 * `daemonMessage` is the daemon's text with terminal colour codes removed.
 */
export class DaemonOpError extends LoftError {
  constructor(
    readonly op: string,
    readonly daemonMessage: string,
    readonly details: {
      /** Exit status (protocol < 1.26). */
      status?: number;
      /** Verbosity level (1.26+). */
      level?: number;
      traces?: DaemonErrorTrace[];
    } = {},
    options: LoftErrorOptions = {},
  ) {
    super('DAEMON_OP_FAILED', 'work', `nix-daemon ${op} failed: ${daemonMessage}`, options);
  }
}

/** The client was closed or destroyed; the operation did not run or was cut short. */
export class DaemonClosedError extends LoftError {
  constructor(what: string) {
    super('DAEMON_CLOSED', 'aborted', `nix-daemon client is ${what}`, {
      hint: 'open a new store client; this one was closed by its owner',
    });
  }
}

/** `nix-daemon --stdio` could not be started. */
export class DaemonSpawnError extends LoftError {
  constructor(
    readonly command: string,
    reason: string,
    options: LoftErrorOptions = {},
  ) {
    super('DAEMON_SPAWN_FAILED', 'environment', `cannot start \`${command}\`: ${reason}`, {
      hint:
        options.hint ??
        'install Nix so that `nix-daemon` is on PATH, or use the socket transport with a running daemon',
      cause: options.cause,
    });
  }
}

/** An option given to the client is not acceptable. */
export class DaemonOptionError extends LoftError {
  constructor(option: string, value: unknown, expected: string) {
    super(
      'DAEMON_OPTION_INVALID',
      'config',
      `invalid nix-daemon client option ${option}: ${JSON.stringify(value)}; expected ${expected}`,
    );
  }
}

/** Terminal colour and style escapes, which the daemon puts around paths in messages. */
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;?]*[A-Za-z]/g;

export function stripAnsi(s: string): string {
  return s.replace(ANSI, '');
}

/** An argument for a daemon operation that the daemon would choke on. */
export class DaemonArgumentError extends LoftError {
  constructor(op: string, reason: string) {
    super('DAEMON_ARGUMENT_INVALID', 'usage', `invalid argument for nix-daemon ${op}: ${reason}`);
  }
}
