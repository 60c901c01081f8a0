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

/** The real store, counting the calls that ask the bucket about narinfos. */
export function countingBlobs(
  inner: BlobStore,
): BlobStore & { heads: number; lists: number; copies: number } {
  const counted = {
    heads: 0,
    lists: 0,
    copies: 0,
    id: inner.id,
    description: inner.description,
    check: () => inner.check(),
    head: (key: string) => {
      counted.heads++;
      return inner.head(key);
    },
    get: (...a: Parameters<BlobStore['get']>) => inner.get(...a),
    put: (...a: Parameters<BlobStore['put']>) => inner.put(...a),
    upload: (...a: Parameters<BlobStore['upload']>) => inner.upload(...a),
    list: (...a: Parameters<BlobStore['list']>) => {
      counted.lists++;
      return inner.list(...a);
    },
    deleteMany: (...a: Parameters<BlobStore['deleteMany']>) => inner.deleteMany(...a),
    copy: (...a: Parameters<BlobStore['copy']>) => {
      counted.copies++;
      return inner.copy(...a);
    },
    listMultipartUploads: (...a: Parameters<BlobStore['listMultipartUploads']>) =>
      inner.listMultipartUploads(...a),
    abortMultipartUpload: (...a: Parameters<BlobStore['abortMultipartUpload']>) =>
      inner.abortMultipartUpload(...a),
    close: () => inner.close(),
  };
  return counted;
}
