/**
 * A store whose every request waits for the bucket check, so that a one-shot command can
 * do its local work (resolving paths, walking the closure through the daemon) while the
 * check's round trip runs, and still sends nothing the check would have stopped. A failed
 * check is the error of the first request and of every one after it. The caller handles
 * `checked`'s rejection from the start (a request may come late, or never).
 */
import type { BlobStore, ByteSource } from './port.js';

export function afterCheck(blobs: BlobStore, checked: Promise<void>): BlobStore {
  const gate = <T>(request: () => Promise<T>): Promise<T> => checked.then(request);
  async function* gated<T>(pages: () => AsyncIterable<T>): AsyncIterable<T> {
    await checked;
    yield* pages();
  }
  return {
    id: blobs.id,
    description: blobs.description,
    check: () => checked,
    warm: () =>
      void checked.then(
        () => blobs.warm?.(),
        () => {},
      ),
    head: (k) => gate(() => blobs.head(k)),
    get: (k, o) => gate(() => blobs.get(k, o)),
    getStream: blobs.getStream && ((k, o) => gate(() => blobs.getStream!(k, o))),
    put: (k, b, o) => gate(() => blobs.put(k, b, o)),
    upload: (k, s, o) =>
      checked.then(
        () => blobs.upload(k, s, o),
        (e: unknown) => {
          // As a failed upload does: the source is destroyed, the error rethrown.
          (s as ByteSource & { destroy?: () => void }).destroy?.();
          throw e;
        },
      ),
    list: (p, o) => gated(() => blobs.list(p, o)),
    deleteMany: (ks) => gate(() => blobs.deleteMany(ks)),
    copy: (a, b, o) => gate(() => blobs.copy(a, b, o)),
    listMultipartUploads: (p) => gated(() => blobs.listMultipartUploads(p)),
    abortMultipartUpload: (k, u) => gate(() => blobs.abortMultipartUpload(k, u)),
    close: () => blobs.close(),
  };
}
