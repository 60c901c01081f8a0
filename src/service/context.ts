/**
 * Everything a command needs, opened from the configuration once: the local store (through
 * the nix-daemon), the cache (S3), the local index, the compressor and the signing key.
 * Commands and the service share it; `close()` releases it all.
 */
import type { Logger } from '../util/log.js';
import { parseSecretKey, type SecretKey } from '../nix/signing.js';
import type { LoftConfig } from '../config/index.js';
import { readSigningKey } from '../config/index.js';
import { getCompression, shutdownCompression, type Compression } from '../compress/index.js';
import { LocalStore } from '../store/local-store.js';
import { createS3Store, type BlobStore } from '../storage/index.js';
import { LocalIndex } from '../index/local-index.js';

export interface AppContext {
  config: LoftConfig;
  logger: Logger;
  store: LocalStore;
  blobs: BlobStore;
  compression: Compression;
  signingKey: SecretKey | undefined;
  /** Known-present paths and service state for this cache (scoped by `blobs.id`). */
  index: LocalIndex;
  close(): Promise<void>;
}

export interface OpenOptions {
  env?: Record<string, string | undefined>;
  /** Override the bucket backend (tests and benches use a local directory too). */
  blobs?: BlobStore;
}

function s3StoreFor(config: LoftConfig, logger: Logger): BlobStore {
  return createS3Store({
    bucket: config.s3.bucket,
    region: config.s3.region,
    endpoint: config.s3.endpoint,
    extraHeaders: config.s3.extraHeaders.toRecord(),
    maxAttempts: config.s3.maxAttempts,
    logger,
  });
}

/** Only the local index, for commands that need nothing else (--status, --clear-cache). */
export interface IndexContext {
  config: LoftConfig;
  logger: Logger;
  index: LocalIndex;
  /** The cache the index rows belong to, for people (`S3 bucket ... at ...`). */
  cacheDescription: string;
  close(): void;
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
  const blobs = opts.blobs ?? s3StoreFor(config, logger);
  const { id, description } = blobs;
  if (!opts.blobs) await blobs.close();
  const index = LocalIndex.open(config.localCachePath, id);
  return {
    config,
    logger,
    index,
    cacheDescription: description,
    close: () => index.close(),
  };
}

export async function openContext(
  config: LoftConfig,
  logger: Logger,
  opts: OpenOptions = {},
): Promise<AppContext> {
  // The cheap, local checks first, so a bad key or compressor fails before any connection.
  const keyText = await readSigningKey(config);
  const signingKey = keyText ? parseSecretKey(keyText.reveal(), keyText.path) : undefined;
  const compression = getCompression(config.compression);
  await compression.check();

  const blobs = opts.blobs ?? s3StoreFor(config, logger);
  let store: LocalStore | undefined;
  let index: LocalIndex | undefined;
  try {
    index = LocalIndex.open(config.localCachePath, blobs.id);
    store = await LocalStore.open({
      // A socket named in the config is the only one: never a silent fallback elsewhere.
      ...(config.daemonSocket === undefined
        ? { transport: 'auto' as const }
        : { transport: 'socket' as const, socketPath: config.daemonSocket }),
      env: opts.env,
      // One connection per NAR in flight, plus one for queries.
      maxConnections: config.uploadThreads + 1,
      logger,
    });
    await blobs.check();
  } catch (e) {
    store?.destroy();
    index?.close();
    await blobs.close();
    throw e;
  }
  const opened = store;
  const openedIndex = index;
  return {
    config,
    logger,
    store: opened,
    blobs,
    compression,
    signingKey,
    index: openedIndex,
    async close() {
      await Promise.allSettled([opened.close(), blobs.close()]);
      openedIndex.close();
      await shutdownCompression();
    },
  };
}
