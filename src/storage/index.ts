/**
 * The storage layer's public surface: the bucket port, its two backends, the cache's key
 * layout and the errors callers may branch on.
 */
export type * from './port.js';
export { createS3Store, type S3Store, type S3StoreOptions } from './s3-store.js';
export type { S3Credentials } from './s3-client.js';
export { createLocalDirStore, type LocalDirStoreOptions } from './local-dir-store.js';
export * from './keys.js';
export * from './errors.js';
export { DEFAULT_RETRY_POLICY, type RetryPolicy } from './backoff.js';
export { MAX_PART_SIZE, MIN_PART_SIZE, DEFAULT_PART_SIZE, MAX_PARTS } from './part-size.js';
