/**
 * BlobStore wrappers for tests: they forward to the real store (RGW or a directory) and
 * only count calls or inject faults and timing; nothing is simulated.
 */
import type { BlobStore } from '../../src/storage/port.js';

/** A BlobStore that forwards every call to `inner`, except those `over` replaces. */
export function wrapStore(inner: BlobStore, over: Partial<BlobStore> = {}): BlobStore {
  const base: BlobStore = {
    id: inner.id,
    description: inner.description,
    check: () => inner.check(),
    warm: () => inner.warm?.(),
    head: (k) => inner.head(k),
    get: (k, o) => inner.get(k, o),
    put: (k, b, o) => inner.put(k, b, o),
    upload: (k, s, o) => inner.upload(k, s, o),
    list: (p, o) => inner.list(p, o),
    deleteMany: (ks) => inner.deleteMany(ks),
    copy: (a, b, o) => inner.copy(a, b, o),
    listMultipartUploads: (p) => inner.listMultipartUploads(p),
    abortMultipartUpload: (k, u) => inner.abortMultipartUpload(k, u),
    close: () => inner.close(),
  };
  return { ...base, ...over };
}

/** The real store, counting the calls that ask the bucket about narinfos. */
export function countingBlobs(
  inner: BlobStore,
): BlobStore & { heads: number; lists: number; copies: number } {
  const counted = Object.assign(wrapStore(inner), { heads: 0, lists: 0, copies: 0 });
  counted.head = (k) => {
    counted.heads++;
    return inner.head(k);
  };
  counted.list = (p, o) => {
    counted.lists++;
    return inner.list(p, o);
  };
  counted.copy = (a, b, o) => {
    counted.copies++;
    return inner.copy(a, b, o);
  };
  return counted;
}
