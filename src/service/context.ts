/**
 * Everything a command needs, opened from the configuration once: the local store (through
 * the nix-daemon), the cache (S3), the local index, the compressor and the signing key.
 * Commands and the service share it; `close()` releases it all.
 */
import type { Logger } from '../util/log.js';
import { parseSecretKey, type SecretKey } from '../nix/signing.js';
import type { LoftConfig } from '../config/index.js';
import { daemonTransportOf, readSigningKey } from '../config/index.js';
import { getCompression, shutdownCompression, type Compression } from '../compress/index.js';
import { LocalStore } from '../store/local-store.js';
import type { BlobStore } from '../storage/port.js';
import { normaliseEndpoint, s3CacheIdentity } from '../storage/s3-identity.js';
import { LocalIndex } from '../index/local-index.js';
import { afterCheck } from '../storage/after-check.js';
import { NarPacker } from '../pack/index.js';
// policy.js, not index.js: every push needs the refresh cutoff, not the pruning code.
import { DAY_MS, refreshAfterMs } from '../prune/policy.js';
import type { PushContext, PushOptions } from '../upload/push.js';
import { pathFilter } from '../upload/filter.js';

export interface AppContext {
  /** Which of the three contexts this is (each opens more than the one before). */
  readonly opened: 'app';
  config: LoftConfig;
  logger: Logger;
  store: LocalStore;
  blobs: BlobStore;
  compression: Compression;
  signingKey: SecretKey | undefined;
  /** Known-present paths and service state for this cache (scoped by `blobs.id`). */
  index: LocalIndex;
  /** Packs NARs from disk in worker threads (see src/pack). */
  packer: NarPacker;
  close(): Promise<void>;
}

/** The push pipeline's view of the app; the CLI and the service push the same way. */
export function pushContextOf(app: AppContext): PushContext {
  return {
    store: app.store,
    blobs: app.blobs,
    index: app.index,
    compression: app.compression,
    compressionLevel: app.config.compressionLevel,
    signingKey: app.signingKey,
    logger: app.logger,
    packer: app.packer,
    realStoreDir: app.config.realStoreDir,
    cacheControl: app.config.cacheControl,
  };
}

/** What every push takes from the configuration. */
export function pushOptionsOf(
  config: LoftConfig,
): Pick<
  PushOptions,
  'uploadThreads' | 'skipSignedByKeys' | 'refreshAfterMs' | 'writeListing' | 'exclude'
> {
  const filter = pathFilter({ include: config.includePatterns, exclude: config.excludePatterns });
  return {
    exclude: filter && ((p) => filter.excludes(p)),
    uploadThreads: config.uploadThreads,
    skipSignedByKeys: config.skipSignedByKeys,
    // Always, even when this machine does not prune: another one sharing the bucket may.
    refreshAfterMs: refreshAfterMs(config.prune.retentionDays * DAY_MS),
    writeListing: config.writeNarListing,
  };
}

export interface OpenOptions {
  env?: Record<string, string | undefined>;
  /** Override the bucket backend (tests and benches use a local directory too). */
  blobs?: BlobStore;
  /** Told of every S3 request attempt (metrics). */
  onS3Request?: (operation: string, status: string) => void;
  /**
   * Return before the bucket check has answered; every request then waits for it
   * (storage/after-check.ts). One-shot commands do their local work meanwhile.
   */
  deferBucketCheck?: boolean;
}

/**
 * The S3 store; the AWS SDK loads only here, so index-only commands never pay for it.
 * `maxAttempts` overrides the configured request retries (the doctor tries once).
 */
export async function s3StoreFor(
  config: LoftConfig,
  logger: Logger,
  onRequest?: OpenOptions['onS3Request'],
  maxAttempts = config.s3.maxAttempts,
): Promise<BlobStore> {
  const { createS3Store } = await import('../storage/s3-store.js');
  return createS3Store({
    bucket: config.s3.bucket,
    region: config.s3.region,
    endpoint: config.s3.endpoint,
    extraHeaders: config.s3.extraHeaders.toRecord(),
    maxAttempts,
    logger,
    onRequest,
  });
}

/** What every context has: the configuration, the logger and the local index. */
interface IndexParts {
  config: LoftConfig;
  logger: Logger;
  index: LocalIndex;
  /** The cache the index rows belong to, for people (`S3 bucket ... at ...`). */
  cacheDescription: string;
  close(): void | Promise<void>;
}

/** Only the local index, for commands that need nothing else (--status, --clear-cache). */
export interface IndexContext extends IndexParts {
  /** Which of the three contexts this is (each opens more than the one before). */
  readonly opened: 'index';
}

/**
 * Open the local index scoped to the configured cache, without touching S3, the daemon or
 * the signing key: the cache's identity is derived from the configuration alone.
 */
export async function openIndexOnly(
  config: LoftConfig,
  logger: Logger,
  opts: Pick<OpenOptions, 'blobs'> = {},
): Promise<IndexContext> {
  // Named without the AWS SDK: these commands never talk to S3.
  const { id, description } = opts.blobs ?? s3IdentityOf(config);
  const index = LocalIndex.open(config.localCachePath, id);
  return {
    opened: 'index',
    config,
    logger,
    index,
    cacheDescription: description,
    close: () => index.close(),
  };
}

/** The bucket and the index, for commands that need neither the daemon nor the key. */
export interface CacheContext extends IndexParts {
  readonly opened: 'cache';
  blobs: BlobStore;
}

/** For --prune and --populate-cache: they work against the bucket alone. */
export async function openCacheContext(config: LoftConfig, logger: Logger): Promise<CacheContext> {
  const blobs = await s3StoreFor(config, logger);
  let index: LocalIndex | undefined;
  try {
    await blobs.check();
    index = LocalIndex.open(config.localCachePath, blobs.id);
  } catch (e) {
    await blobs.close();
    throw e;
  }
  const opened = index;
  return {
    opened: 'cache',
    config,
    logger,
    index: opened,
    blobs,
    cacheDescription: blobs.description,
    close: async () => {
      await blobs.close();
      opened.close();
    },
  };
}

function s3IdentityOf(config: LoftConfig): { id: string; description: string } {
  return s3CacheIdentity({
    bucket: config.s3.bucket,
    endpoint: normaliseEndpoint(config.s3.endpoint),
    region: config.s3.region,
  });
}

export async function openContext(
  config: LoftConfig,
  logger: Logger,
  opts: OpenOptions = {},
): Promise<AppContext> {
  // The key is local and cheap: a bad one fails before any connection is made.
  const keyText = await readSigningKey(config);
  const signingKey = keyText ? parseSecretKey(keyText.reveal(), keyText.path) : undefined;
  const compression = getCompression(config.compression);
  const blobs = opts.blobs ?? (await s3StoreFor(config, logger, opts.onS3Request));
  let index: LocalIndex;
  try {
    index = LocalIndex.open(config.localCachePath, blobs.id);
  } catch (e) {
    await blobs.close();
    throw e;
  }
  const bucketCheck = blobs.check();
  // Deferred, it is awaited only by the first request: until then it must not count as
  // an unhandled rejection (which would end the process with a stack trace).
  bucketCheck.catch(() => {});
  // The slow checks wait on other processes (a worker, the daemon, S3): run them together.
  const [checked, opened, reached] = await Promise.allSettled([
    compression.check(),
    LocalStore.open({
      // A socket named in the config is the only one: never a silent fallback elsewhere.
      ...daemonTransportOf(config),
      env: opts.env,
      // One connection per NAR in flight, plus one for queries.
      maxConnections: config.uploadThreads + 1,
      logger,
    }),
    opts.deferBucketCheck ? undefined : bucketCheck,
  ]);
  const failed = [checked, opened, reached].find((r) => r.status === 'rejected');
  if (failed) {
    if (opened.status === 'fulfilled') opened.value.destroy();
    index.close();
    await blobs.close();
    await shutdownCompression();
    // In a fixed order (config, daemon, S3), so the same fault always gives the same error.
    throw failed.reason;
  }
  const store = (opened as PromiseFulfilledResult<LocalStore>).value;
  const packer = new NarPacker();
  return {
    opened: 'app',
    config,
    logger,
    store,
    blobs: opts.deferBucketCheck ? afterCheck(blobs, bucketCheck) : blobs,
    compression,
    signingKey,
    index,
    packer,
    async close() {
      // A thread takes longest to end (it frees its own heap): asked first, the threads end
      // while this thread closes the connections and the index.
      const threads = Promise.allSettled([shutdownCompression(), packer.shutdown()]);
      await Promise.allSettled([store.close(), blobs.close()]);
      index.close();
      await threads;
    },
  };
}
