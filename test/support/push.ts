/** A push context over the real daemon and RGW, for upload tests. */
import { getCompression, type CompressionName } from '../../src/compress/index.js';
import { NarPacker } from '../../src/pack/index.js';
import type { SecretKey } from '../../src/nix/signing.js';
import { LocalStore } from '../../src/store/local-store.js';
import { createS3Store, type BlobStore } from '../../src/storage/index.js';
import type { PushContext, PresenceIndex } from '../../src/upload/push.js';
import { nullLogger } from '../../src/util/log.js';
import { storeOptions } from './s3.js';

export interface TestPushContext extends PushContext {
  close(): Promise<void>;
}

export async function openPushContext(opts: {
  bucket: string;
  key: SecretKey | undefined;
  compression?: CompressionName;
  index?: PresenceIndex;
  blobs?: BlobStore;
  /** NARs from disk in worker threads, as Loft runs (default), or from the daemon only. */
  source?: 'packer' | 'daemon';
}): Promise<TestPushContext> {
  const store = await LocalStore.open({ maxConnections: 6 });
  const blobs = opts.blobs ?? createS3Store(storeOptions(opts.bucket));
  const packer = opts.source === 'daemon' ? undefined : new NarPacker();
  return {
    packer,
    store,
    blobs,
    index: opts.index,
    compression: getCompression(opts.compression ?? 'zstd'),
    compressionLevel: undefined,
    signingKey: opts.key,
    logger: nullLogger,
    async close() {
      await Promise.allSettled([store.close(), blobs.close(), packer?.shutdown()]);
    },
  };
}
