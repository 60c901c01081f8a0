/**
 * A store whose writes wait for the bucket check, so that a one-shot command can do its
 * local work (resolving paths, walking the closure through the daemon) while the check's
 * round trip runs, and still writes nothing the check would have stopped. Reads go out at
 * once, alongside the check: they change nothing, and a push's first one (the listing that
 * decides what to upload) then costs no round trip of its own. Whatever a request's own
 * answer, a failed check is the error of every request, the first and every one after it.
 * The caller handles `checked`'s rejection from the start (a request may come late, or
 * never).
 */
import type { BlobStore, ByteSource } from './port.js';

export function afterCheck(blobs: BlobStore, checked: Promise<void>): BlobStore {
  let failed = false;
  checked.catch(() => (failed = true));
  const gate = <T>(request: () => Promise<T>): Promise<T> => checked.then(request);
  /** `drop` disposes of an answer that came for nothing (the check failed). */
  const alongside = <T>(request: () => Promise<T>, drop?: (answer: T) => void): Promise<T> => {
    if (failed) return gate(request);
    const answer = request();
    answer.catch(() => {});
    return checked.then(
      () => answer,
      (e: unknown) => {
        if (drop) answer.then(drop, () => {});
        throw e;
      },
    );
  };
  /** The first page is asked for alongside the check, the rest as they are read. */
  async function* listedAlongside<T>(pages: () => AsyncIterable<T>): AsyncIterable<T> {
    const it = pages()[Symbol.asyncIterator]();
    try {
      const first = alongside(() => it.next());
      for (let page = await first; !page.done; page = await it.next()) yield page.value;
    } finally {
      // Not awaited: after a failed check, the first page's request may still be running.
      it.return?.().catch(() => {});
    }
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
    head: (k) => alongside(() => blobs.head(k)),
    get: (k, o) => alongside(() => blobs.get(k, o)),
    getStream:
      blobs.getStream &&
      ((k, o) =>
        alongside(
          () => blobs.getStream!(k, o),
          (stream) => stream?.destroy(),
        )),
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
    list: (p, o) => listedAlongside(() => blobs.list(p, o)),
    deleteMany: (ks) => gate(() => blobs.deleteMany(ks)),
    copy: (a, b, o) => gate(() => blobs.copy(a, b, o)),
    listMultipartUploads: (p) => listedAlongside(() => blobs.listMultipartUploads(p)),
    abortMultipartUpload: (k, u) => gate(() => blobs.abortMultipartUpload(k, u)),
    close: () => blobs.close(),
  };
}
