/**
 * Every error code Loft raises, with its kind and one line for users. `LoftError` accepts
 * only these codes, so a new code cannot be raised without being listed here; the README's
 * error table is generated from this list (src/util/error-reference.ts), and the failure
 * policy (src/util/failure-policy.ts) reads each code's meaning from it. Pure data.
 */
import type { ErrorKind } from './errors.js';

/**
 * What a failure means for the work around it, whoever meets it:
 * - `retry-path`: this attempt failed for a reason that may pass (a lost daemon connection,
 *   a server still failing after the request retries): a push tries the path again; the
 *   service queue pauses without charging the path;
 * - `outage`: S3 or the nix-daemon cannot be reached or refuses us: a push stops; the
 *   service pauses without charging any path;
 * - `fatal`: a configuration or environment error, or a bug, that no retry fixes: a push
 *   stops; the service pauses without charging any path;
 * - `path`: the path's own failure (corrupt, vanished, a 4xx on its object): the path and
 *   what depends on it fail; the service charges an attempt and parks the path after
 *   `queue_max_attempts`.
 * `retry-request` is the storage layer's own verdict on one S3 request (5xx, throttling,
 * dropped connections), retried there before any of the above sees it.
 */
export type FailureMeaning = 'retry-request' | 'retry-path' | 'outage' | 'fatal' | 'path';

export interface ErrorCodeSpec {
  /** The kind its errors carry (and so the exit code); `from-cause` takes the cause's. */
  readonly kind: ErrorKind | 'from-cause';
  readonly meaning: FailureMeaning;
  /** One line for the README's table. */
  readonly text: string;
}

function spec(kind: ErrorCodeSpec['kind'], meaning: FailureMeaning, text: string): ErrorCodeSpec {
  return { kind, meaning, text };
}

export const ERROR_CODES = {
  // Command line
  'cli.usage': spec('usage', 'fatal', 'a flag is unknown, lacks its value, or does not combine'),
  UPLOAD_NO_PATHS: spec('usage', 'fatal', '`--upload-path` was given no store path'),
  UPLOAD_BAD_PATHS: spec('usage', 'fatal', 'a path given to `--upload-path` is not usable'),
  WATCH_EXEC_SPAWN: spec('usage', 'fatal', 'the command given to `--watch-exec` cannot be run'),
  PIN_BAD_NAME: spec('usage', 'fatal', 'a pin name is not usable'),
  PATH_MISSING: spec('usage', 'path', 'a given path does not exist'),
  PATH_OUTSIDE_STORE: spec('usage', 'path', 'a given path is not inside the Nix store'),
  DAEMON_ARGUMENT_INVALID: spec('usage', 'fatal', 'a value sent to the nix-daemon is malformed'),
  INBOX_BAD_PATH: spec(
    'usage',
    'path',
    'the post-build hook was given a path that is not a store path',
  ),

  // Configuration
  'config.invalid': spec(
    'config',
    'fatal',
    'loft.toml breaks the schema (every problem is listed)',
  ),
  'config.syntax': spec('config', 'fatal', 'loft.toml is not valid TOML'),
  'config.missing': spec('config', 'fatal', 'the configuration file does not exist'),
  'config.unreadable': spec('config', 'fatal', 'the configuration file cannot be read'),
  'config.signing-key': spec(
    'config',
    'fatal',
    'the signing key file is missing, unreadable or malformed',
  ),
  SIGNING_KEY_INVALID: spec('config', 'fatal', 'a signing key is not a valid Nix secret key'),
  VERIFY_NO_KEYS: spec('config', 'fatal', '`--verify` has no public key to check signatures with'),
  FILTER_BAD_PATTERN: spec(
    'config',
    'fatal',
    'an include_patterns or exclude_patterns entry is not a valid regular expression',
  ),
  S3_ENDPOINT_NOT_TLS: spec(
    'config',
    'fatal',
    's3.endpoint says https:// but the server answers plain HTTP',
  ),
  S3_ENDPOINT_HAS_BUCKET: spec(
    'config',
    'fatal',
    's3.endpoint ends in the bucket name, so requests went to the wrong place',
  ),
  COMPRESSION_UNKNOWN: spec('config', 'fatal', 'the compression method is not one Loft knows'),
  COMPRESSION_LEVEL_INVALID: spec(
    'config',
    'fatal',
    'the compression level is out of range for the method',
  ),
  DAEMON_OPTION_INVALID: spec('config', 'fatal', 'a nix-daemon connection option is invalid'),
  STORE_OPTION_INVALID: spec(
    'config',
    'fatal',
    'a store option (store dir, real store dir) is invalid',
  ),
  STORAGE_INVALID_OPTIONS: spec('config', 'fatal', 'an S3 or storage option is invalid'),
  S3_NO_CREDENTIALS: spec('config', 'fatal', 'no S3 credentials were found'),
  S3_WRONG_REGION: spec('config', 'fatal', 'S3 says the request was signed for the wrong region'),
  CACHE_STORE_DIR_MISMATCH: spec(
    'config',
    'fatal',
    "the cache's nix-cache-info names another store dir",
  ),
  SERVICE_STORE_DIR: spec('config', 'fatal', 'the service cannot watch the configured store dir'),
  PRUNE_BAD_POLICY: spec('config', 'fatal', 'a prune setting cannot work'),

  // Environment: S3, the nix-daemon, tools, local state
  COORD_LAPSED: spec(
    'environment',
    'outage',
    "a push's lease (or a prune's intent) was not renewed in time; stopped before relying on it",
  ),
  COORD_NOT_VISIBLE: spec(
    'environment',
    'fatal',
    'a lease or intent just written is not visible (no read-after-write consistency)',
  ),
  DOCTOR_CLOCK_SKEW: spec(
    'environment',
    'fatal',
    "this machine's clock is more than 15 minutes off the S3 server's",
  ),
  DOCTOR_CACHE_INFO: spec(
    'environment',
    'fatal',
    "the bucket's nix-cache-info names another store directory",
  ),
  METRICS_LISTEN_FAILED: spec(
    'environment',
    'fatal',
    'the metrics listener cannot bind its address (metrics_listen)',
  ),
  S3_NO_ANSWER: spec(
    'environment',
    'retry-request',
    'one S3 request got no answer (connection refused or reset, timeout); after its retries: S3_UNREACHABLE',
  ),
  S3_CLOCK_SKEW: spec(
    'environment',
    'retry-request',
    "S3 says the request's time is off (the next try uses the server's clock); after its retries: S3_ACCESS_DENIED",
  ),
  S3_UNREACHABLE: spec(
    'environment',
    'outage',
    'S3 gave no answer (connection refused or reset, DNS, timeout, TLS)',
  ),
  S3_ACCESS_DENIED: spec('environment', 'outage', 'S3 refused the credentials or the permission'),
  S3_NO_SUCH_BUCKET: spec('environment', 'outage', 'the bucket does not exist at that endpoint'),
  CACHE_INFO_INVALID: spec('environment', 'outage', "the cache's nix-cache-info cannot be parsed"),
  CACHE_CHANGING: spec(
    'environment',
    'outage',
    'cached paths vanished twice during one push (a concurrent prune)',
  ),
  DAEMON_SOCKET_MISSING: spec('environment', 'outage', "the nix-daemon's socket does not exist"),
  DAEMON_PERMISSION_DENIED: spec(
    'environment',
    'outage',
    'this user may not connect to the nix-daemon',
  ),
  DAEMON_REJECTED: spec('environment', 'outage', 'the nix-daemon refused the connection'),
  DAEMON_BUSY: spec('environment', 'outage', 'the nix-daemon did not answer in time'),
  DAEMON_SPAWN_FAILED: spec('environment', 'outage', '`nix-daemon --stdio` could not be started'),
  DAEMON_VERSION_UNSUPPORTED: spec(
    'environment',
    'fatal',
    "the nix-daemon's protocol version is not supported",
  ),
  DAEMON_CONNECTION_LOST: spec(
    'environment',
    'retry-path',
    'the connection to the nix-daemon broke (the pool reconnects)',
  ),
  DAEMON_PROTOCOL: spec(
    'format',
    'retry-path',
    'the nix-daemon sent something the protocol does not allow',
  ),
  COMPRESSION_TOOL_MISSING: spec(
    'environment',
    'fatal',
    'the compressor program (xz) is not installed',
  ),
  PACK_SOURCE_UNREADABLE: spec(
    'environment',
    'path',
    'a path cannot be read from disk (Loft then asks the nix-daemon)',
  ),
  LOCAL_DIR_UNUSABLE: spec('environment', 'outage', 'the local cache directory cannot be used'),
  INDEX_UNWRITABLE: spec('environment', 'fatal', 'the local index cannot be written'),
  INDEX_CORRUPT: spec('environment', 'fatal', 'the local index file is damaged'),
  INDEX_TOO_NEW: spec('environment', 'fatal', 'the local index was written by a newer Loft'),
  INDEX_BUSY: spec('environment', 'outage', 'the local index is locked by another process'),
  INBOX_UNWRITABLE: spec(
    'environment',
    'fatal',
    "the post-build hook cannot write to the service's inbox",
  ),
  WATCH_FAILED: spec('environment', 'fatal', 'watching the store for new paths failed'),

  // Work on one path or one object
  S3_SERVER_ERROR: spec(
    'work',
    'retry-request',
    'S3 kept answering 5xx, throttling (429, SlowDown) or timeouts, or an answer that breaks the protocol',
  ),
  S3_REQUEST_FAILED: spec(
    'work',
    'path',
    'an S3 request failed for a reason no retry changes (a 4xx or 501 about it, or an unknown error)',
  ),
  STORAGE_NO_SUCH_KEY: spec(
    'work',
    'path',
    'an object is not in the bucket (often expected: callers branch on it)',
  ),
  STORAGE_DELETE_FAILED: spec('work', 'path', 'some objects of a batch delete were not deleted'),
  NAR_MISMATCH: spec(
    'work',
    'path',
    "a path's bytes differ from the hash or size the Nix database registered",
  ),
  NAR_SOURCE_CHANGED: spec('work', 'path', "a path's files changed while its NAR was read"),
  NAR_UNSUPPORTED_FILE: spec('work', 'path', 'a path holds a file type a NAR cannot represent'),
  PATH_NOT_VALID: spec(
    'work',
    'path',
    'the path is not valid in the Nix store (never built, or collected)',
  ),
  COMPRESSION_FAILED: spec('work', 'path', 'the compressor failed on a NAR'),
  COMPRESSION_INTERRUPTED: spec(
    'work',
    'retry-path',
    "a terminal's Ctrl-C reached the compressor as it started (before it left Loft's process group); the path is compressed again",
  ),
  COMPRESSION_INPUT_MISMATCH: spec(
    'work',
    'path',
    "the bytes compressed differ from the path's registered hash or size",
  ),
  PACK_FAILED: spec('work', 'path', 'packing a NAR from disk failed'),
  PIN_NOT_CACHED: spec('work', 'path', 'the path to pin is not in the cache'),
  PIN_NOT_FOUND: spec('work', 'path', 'there is no pin of that name'),
  PIN_PATH_PRUNED: spec(
    'work',
    'path',
    'a prune deleted the pinned path while the pin was written',
  ),
  DAEMON_OP_FAILED: spec('work', 'path', 'the nix-daemon answered an operation with an error'),
  PRUNE_INCOMPLETE: spec(
    'from-cause',
    'path',
    'a prune stopped part-way (the cache stays closure-complete)',
  ),

  // Malformed data
  NAR_INVALID: spec('format', 'path', 'a NAR is malformed'),
  NAR_TRUNCATED: spec('format', 'path', 'a NAR ended early'),
  NARINFO_INVALID: spec('format', 'path', 'a narinfo is malformed'),
  HASH_INVALID: spec('format', 'path', 'a hash is malformed'),
  NIX32_INVALID: spec('format', 'path', 'a Nix base-32 string is malformed'),
  STORE_PATH_INVALID: spec('format', 'path', 'a store path is malformed'),
  DERIVATION_INVALID: spec('format', 'path', 'a store derivation (.drv) is malformed'),
  REALISATION_INVALID: spec('format', 'path', 'a realisation (CA derivation output) is malformed'),

  // Stopped
  INTERRUPTED: spec('aborted', 'fatal', 'stopped by SIGINT or SIGTERM'),
  STORAGE_ABORTED: spec('aborted', 'fatal', 'an upload was aborted'),
  DAEMON_CLOSED: spec('aborted', 'fatal', 'the nix-daemon connection was closed by Loft'),

  // Bugs
  CLI_NO_CONTEXT: spec('internal', 'fatal', 'a command ran without the context it needs'),
  INDEX_ARGUMENT: spec('internal', 'fatal', 'the local index was called with a bad argument'),
  INDEX_CLOSED: spec('internal', 'fatal', 'the local index was used after it was closed'),
  STORAGE_CLOSED: spec('internal', 'fatal', 'storage was used after it was closed'),
  STORAGE_INVALID_KEY: spec('internal', 'fatal', 'an object key is not one Loft writes'),
  VERIFY_NO_STREAM: spec('internal', 'fatal', 'the cache backend cannot stream objects back'),
  NARINFO_VALUE_INVALID: spec('internal', 'fatal', 'a narinfo field value cannot be written'),
  NAR_LISTING_INCOMPLETE: spec('internal', 'fatal', 'a NAR listing was read before its NAR ended'),
  UPLOAD_SIZE_MISMATCH: spec(
    'internal',
    'fatal',
    'storage stored another size than the compressor produced',
  ),
} as const satisfies Record<string, ErrorCodeSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}
