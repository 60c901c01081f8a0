import type { ExtraHeaders } from './extra-headers.js';
import type { Schedule } from './schedule.js';
import type { CompressionName, LogFormat } from './schema.js';

export type { CompressionName, LogFormat, Schedule };

/** The validated configuration, with defaults filled in and paths made absolute. */
export interface LoftConfig {
  /** The file the settings came from, for messages. */
  readonly source: string;
  readonly s3: {
    readonly bucket: string;
    readonly region: string;
    /** Normalised URL without trailing slash; undefined means AWS S3's own endpoint. */
    readonly endpoint: string | undefined;
    /** Merged file + `LOFT_EXTRA_HEADER_*` headers; values redacted from inspect/JSON. */
    readonly extraHeaders: ExtraHeaders;
    readonly maxAttempts: number;
  };
  readonly uploadThreads: number;
  readonly scanOnStartup: boolean;
  readonly populateCacheOnStartup: boolean;
  /** Absolute path of the SQLite index. */
  readonly localCachePath: string;
  readonly compression: CompressionName;
  /** undefined: the compressor's default level. */
  readonly compressionLevel: number | undefined;
  /** Absolute path, or undefined when narinfos are not signed. */
  readonly signingKeyPath: string | undefined;
  readonly signingKeyName: string | undefined;
  /** Key names only (a `name:base64` public key in the file is reduced to `name`). */
  readonly skipSignedByKeys: readonly string[];
  /** Regular expressions over store path names (validated); see src/upload/filter.ts. */
  readonly includePatterns: readonly string[];
  readonly excludePatterns: readonly string[];
  readonly uploadBuildLogs: boolean;
  /** `name:base64` public keys `--verify` trusts besides the signing key's. */
  readonly trustedPublicKeys: readonly string[];
  /** Where the service serves /metrics; undefined: nowhere. */
  readonly metricsListen: { readonly host: string; readonly port: number } | undefined;
  /** Cache-Control values stored with written objects; undefined: none. */
  readonly cacheControl: { readonly narInfo: string | undefined; readonly nar: string | undefined };
  readonly prune: {
    readonly enabled: boolean;
    readonly retentionDays: number;
    readonly maxSizeGb: number | undefined;
    /** `maxSizeGb` in bytes (GB = 10^9 bytes), rounded down. */
    readonly maxSizeBytes: number | undefined;
    readonly targetPercentage: number;
    readonly graceMinutes: number;
    readonly schedule: Schedule;
  };
  readonly writeNarListing: boolean;
  /** undefined: the usual search (env, default socket, `nix-daemon --stdio`). */
  readonly daemonSocket: string | undefined;
  /** The store directory on disk, when not the daemon's own (chroot stores); else undefined. */
  readonly realStoreDir: string | undefined;
  /** Service queue: attempts before a path is parked, and the first retry delay. */
  readonly queue: { readonly maxAttempts: number; readonly retrySeconds: number };
  /** From `log_format`, overridden by `--log-format`. */
  readonly logFormat: LogFormat;
  /** Seconds between progress lines when stderr is not a terminal; 0: none. */
  readonly progressIntervalSeconds: number;
  /** No TOML key: `--debug` sets it, as the seed's CLI and NixOS module do. */
  readonly logLevel: 'info' | 'debug';
}

/** CLI flags that override the file (the seed's `--debug`, Loft's `--log-format`). */
export interface ConfigOverrides {
  debug?: boolean;
  logFormat?: LogFormat;
}
