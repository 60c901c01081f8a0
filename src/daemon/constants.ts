/**
 * Numbers of the nix-daemon worker protocol (client side), with what they mean. Values are
 * Nix's own (src/libstore/worker-protocol.hh); see docs/nix-formats.md section 6.
 */

export const WORKER_MAGIC_1 = 0x6e697863; // "cxin": client hello
export const WORKER_MAGIC_2 = 0x6478696f; // "oixd": daemon hello

/** A protocol version on the wire: major << 8 | minor. */
export type ProtocolVersion = number;

export const protocolVersion = (major: number, minor: number): ProtocolVersion =>
  (major << 8) | minor;
export const protocolMajor = (v: ProtocolVersion): number => (v >> 8) & 0xff;
export const protocolMinor = (v: ProtocolVersion): number => v & 0xff;
export const formatProtocolVersion = (v: ProtocolVersion): string =>
  `${protocolMajor(v)}.${protocolMinor(v)}`;

/** What we advertise: 1.38 (Nix 2.24+), the first version with the feature exchange. */
export const CLIENT_PROTOCOL_VERSION = protocolVersion(1, 38);
/** The oldest daemon we talk to: 1.21 is Nix 2.3, the oldest Nix still in the wild. */
export const MIN_DAEMON_PROTOCOL_VERSION = protocolVersion(1, 21);

/**
 * Minor versions at which the protocol changed in ways this client cares about. Changes
 * before 1.21 (our minimum) are always on: the handshake's obsolete CPU-affinity (1.14) and
 * reserveSpace (1.11) fields, QueryPathInfo's valid flag (1.17) and its ultimate/sigs/ca
 * (1.16).
 */
export const MINOR = {
  /** STDERR_ERROR carries a structured error instead of (message, status). */
  structuredErrors: 26,
  /** QueryValidPaths takes a substitute flag. */
  validPathsSubstitute: 27,
  /** QueryRealisation exists (Nix 2.4); it answers with output paths only. */
  queryRealisation: 27,
  /** QueryRealisation answers with realisations as JSON (signatures, dependencies). */
  realisationJson: 31,
  /** The daemon sends its Nix version string after the handshake. */
  daemonVersionString: 33,
  /** The daemon sends whether it trusts us after the handshake. */
  trustFlag: 35,
  /** Both sides exchange feature lists right after the versions. */
  features: 38,
} as const;

/** Operation codes (WorkerProto::Op). Only those this client sends. */
export const Op = {
  IsValidPath: 1,
  AddTempRoot: 11,
  QueryAllValidPaths: 23,
  QueryPathInfo: 26,
  QueryPathFromHashPart: 29,
  QueryValidPaths: 31,
  AddSignatures: 37,
  NarFromPath: 38,
  QueryRealisation: 43,
} as const;
export type OpName = keyof typeof Op;

/** Messages the daemon sends while it works, before the reply. */
export const Stderr = {
  /** A log line (string). */
  NEXT: 0x6f6c6d67,
  /** The daemon asks the client for data (u64 length); the client answers with a string. */
  READ: 0x64617461,
  /** Data for the client's sink (string). */
  WRITE: 0x64617416,
  /** End of messages: the reply follows. */
  LAST: 0x616c7473,
  /** The operation failed; no reply follows. */
  ERROR: 0x63787470,
  /** id, level, type, text, fields, parent. */
  START_ACTIVITY: 0x53545254,
  /** id. */
  STOP_ACTIVITY: 0x53544f50,
  /** id, type, fields. */
  RESULT: 0x52534c54,
} as const;

/** Logger::Field types in activity and result fields. */
export const FIELD_INT = 0;
export const FIELD_STRING = 1;

/** TrustedFlag in the post-handshake info (1.35+): 0 unknown, 1 trusted, 2 not trusted. */
export const TRUST_UNKNOWN = 0;
export const TRUST_TRUSTED = 1;
export const TRUST_NOT_TRUSTED = 2;

/**
 * Upper bounds for every length-prefixed read, so a confused or hostile peer cannot make us
 * allocate without bound. Generous against anything a real daemon sends.
 */
export const LIMITS = {
  /** A store path: store dir (we allow long ones) + "/" + 32 + "-" + 211. */
  path: 4096,
  /** The daemon's Nix version string, e.g. "2.8.0". */
  versionString: 256,
  /** One feature name. */
  feature: 256,
  features: 1024,
  /** A narHash as the daemon sends it (64 hex chars for sha256; sha512 would be 128). */
  hash: 256,
  /** A realisation's JSON (its dependent realisations included). */
  realisation: 1 << 20,
  /** A realisation id, "sha256:<hex>!<output name>". */
  realisationId: 4096,
  /** A content address, e.g. "fixed:r:sha256:<nix32>". */
  ca: 1024,
  /** One signature, "name:base64". */
  sig: 4096,
  sigs: 4096,
  /** References of one path. */
  references: 1 << 20,
  /** Paths in one set reply (QueryAllValidPaths on a big store). */
  pathSet: 1 << 26,
  /** A log line, an error message or an activity text. */
  message: 1 << 20,
  /** Traces in a structured error. */
  traces: 4096,
  /** Fields of an activity or result. */
  fields: 4096,
  /** One string field of an activity or result. */
  field: 1 << 20,
  /** A STDERR_WRITE payload. */
  write: 64 << 20,
  /** A STDERR_READ request. */
  read: 64 << 20,
} as const;
