/**
 * The client side of the worker-protocol handshake. Every field is gated on the negotiated
 * version min(client, daemon), as both sides of every Nix since 2.3 do, so one code path
 * talks to 1.21 (Nix 2.3) up to 1.38 (2.24+, feature exchange).
 */
import {
  CLIENT_PROTOCOL_VERSION,
  LIMITS,
  MINOR,
  MIN_DAEMON_PROTOCOL_VERSION,
  TRUST_NOT_TRUSTED,
  TRUST_TRUSTED,
  TRUST_UNKNOWN,
  WORKER_MAGIC_1,
  WORKER_MAGIC_2,
  formatProtocolVersion,
  protocolMajor,
  protocolMinor,
  type ProtocolVersion,
} from './constants.js';
import { DaemonProtocolError, DaemonVersionError } from './errors.js';
import { processStderr, type StderrEvent } from './stderr.js';
import type { WireReader } from './wire-reader.js';
import { WireWriter } from './wire-writer.js';

export interface HandshakeResult {
  /** The version both sides use: min(ours, the daemon's). */
  version: ProtocolVersion;
  /** What the daemon advertised. */
  daemonProtocol: ProtocolVersion;
  /** The daemon's Nix version string (1.33+), e.g. "2.8.0". */
  daemonNixVersion: string | undefined;
  /** Whether the daemon trusts us (1.35+; undefined when it does not say). */
  trusted: boolean | undefined;
  /** The daemon's features (1.38+). */
  daemonFeatures: string[];
}

export interface HandshakeOptions {
  /** Where we are talking to, for error messages. */
  endpoint: string;
  onEvent?(event: StderrEvent): void;
}

export async function clientHandshake(
  r: WireReader,
  write: (data: Buffer) => void,
  opts: HandshakeOptions,
): Promise<HandshakeResult> {
  write(new WireWriter().u64(WORKER_MAGIC_1).u64(CLIENT_PROTOCOL_VERSION).toBuffer());

  const magic = await r.u64big('daemon magic');
  if (magic !== BigInt(WORKER_MAGIC_2)) {
    throw new DaemonProtocolError(
      `${opts.endpoint} answered with magic 0x${magic.toString(16)}, not the nix-daemon's 0x${WORKER_MAGIC_2.toString(16)}`,
      { hint: 'check that the socket (or command) is a nix-daemon' },
    );
  }
  const daemonProtocol = await r.u64('daemon protocol version');
  if (protocolMajor(daemonProtocol) !== 1 || daemonProtocol < MIN_DAEMON_PROTOCOL_VERSION) {
    throw new DaemonVersionError(
      opts.endpoint,
      formatProtocolVersion(daemonProtocol),
      formatProtocolVersion(MIN_DAEMON_PROTOCOL_VERSION),
    );
  }
  const version = Math.min(daemonProtocol, CLIENT_PROTOCOL_VERSION);
  const minor = protocolMinor(version);

  const w = new WireWriter();
  if (minor >= MINOR.features) w.strings([]); // features we support (1.38+): none
  w.u64(0); // obsolete CPU affinity (1.14+): none
  w.u64(0); // obsolete reserveSpace (1.11+): false
  write(w.toBuffer());

  let daemonFeatures: string[] = [];
  if (minor >= MINOR.features) {
    daemonFeatures = await r.strings(LIMITS.features, LIMITS.feature, 'daemon features');
  }
  let daemonNixVersion: string | undefined;
  if (minor >= MINOR.daemonVersionString) {
    daemonNixVersion = await r.string(LIMITS.versionString, 'daemon Nix version');
  }
  let trusted: boolean | undefined;
  if (minor >= MINOR.trustFlag) {
    const flag = await r.u64('daemon trust flag');
    if (flag === TRUST_TRUSTED) trusted = true;
    else if (flag === TRUST_NOT_TRUSTED) trusted = false;
    else if (flag !== TRUST_UNKNOWN) throw new DaemonProtocolError(`invalid trust flag ${flag}`);
  }
  await processStderr(r, version, 'handshake', { onEvent: opts.onEvent, write });
  return { version, daemonProtocol, daemonNixVersion, trusted, daemonFeatures };
}
