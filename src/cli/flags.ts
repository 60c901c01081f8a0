/**
 * Every command-line flag, in --help order, with its placeholder, description and default:
 * the single source for the parser's options (args.ts) and the help text (help.ts).
 */
export interface FlagDoc {
  long: string;
  short?: string;
  /** Placeholder of the value, for flags that take one. */
  value?: string;
  description: string;
  default?: string;
  /** Part of the seed's documented CLI (false: a Loft addition). */
  seed: boolean;
  repeatable?: boolean;
}

/** Every flag, in --help order. The single source for the parser's options and the help. */
export const FLAGS: readonly FlagDoc[] = [
  {
    long: 'config',
    short: 'c',
    value: 'CONFIG',
    description: 'Path to the configuration file',
    default: 'loft.toml',
    seed: true,
  },
  { long: 'debug', description: 'Enable debug logging', seed: true },
  {
    long: 'clear-cache',
    description: 'Clear the local cache (the index of paths known to be in the bucket)',
    seed: true,
  },
  {
    long: 'reset-initial-scan',
    description: 'Reset the initial scan complete flag, so the next service start scans again',
    seed: true,
  },
  {
    long: 'force-scan',
    description:
      'Force a full scan, bypassing the local cache (service start, or with --upload-path)',
    seed: true,
  },
  { long: 'populate-cache', description: 'Populate the local cache from S3', seed: true },
  {
    long: 'upload-path',
    value: 'PATH',
    description:
      'Upload a store path (or ./result link) with its closure; repeatable; "-" reads whitespace-separated paths from stdin',
    seed: true,
    repeatable: true,
  },
  { long: 'prune', description: 'Prune the cache now (see the prune_* settings)', seed: true },
  {
    long: 'pin',
    value: 'PATH',
    description:
      'Pin a cached store path (or ./result link): prune never deletes it or its closure, on any machine',
    seed: false,
  },
  {
    long: 'pin-name',
    value: 'NAME',
    description: 'With --pin: the name of the pin; replaces an older pin of that name',
    default: 'the store path name without its hash',
    seed: false,
  },
  { long: 'unpin', value: 'NAME', description: 'Remove the pin of this name', seed: false },
  { long: 'pins', description: 'List the pins in the cache', seed: false },
  {
    long: 'dry-run',
    description: 'With --upload-path or --prune: show what would be done, change nothing',
    seed: false,
  },
  {
    long: 'verify',
    description:
      'Audit the whole cache (narinfos, signatures, NARs, references); exit 1 if anything is damaged',
    seed: false,
  },
  {
    long: 'deep',
    description: 'With --verify: also read every NAR back and check FileHash, NarHash and NarSize',
    seed: false,
  },
  {
    long: 'repair',
    description:
      'With --verify: re-upload what the local store still has of the damaged paths (deletes nothing)',
    seed: false,
  },
  {
    long: 'doctor',
    description: 'Check the configuration, the daemon and every S3 operation Loft needs, and exit',
    seed: false,
  },
  {
    long: 'log-format',
    value: 'FORMAT',
    description: 'Log lines as "text" or "json" (one object per line)',
    default: 'log_format in the config, else text',
    seed: false,
  },
  {
    long: 'status',
    description:
      "Print the service's queue (pending, retrying, parked paths with reasons) and exit; JSON with --log-format json",
    seed: false,
  },
  {
    long: 'watch-exec',
    description:
      'loft --watch-exec -- COMMAND [ARGS...]: run COMMAND, upload every store path it adds while it runs, and exit with its exit code if it failed (else 0 when all reached the cache, else 1)',
    seed: false,
  },
  {
    long: 'post-build-hook',
    description:
      "Record Nix's $OUT_PATHS in the service's queue and return at once (for nix.conf post-build-hook)",
    seed: false,
  },
  { long: 'help', short: 'h', description: 'Print help', seed: true },
  { long: 'version', short: 'V', description: 'Print version', seed: true },
];
