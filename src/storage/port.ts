/**
 * The bucket port: everything the rest of Loft needs from the place a binary cache lives.
 * Two implementations: S3-compatible storage (`createS3Store`) and a local directory laid
 * out like a Nix `file://` cache (`createLocalDirStore`). Keys are the cache's relative
 * paths (`nix-cache-info`, `<hashPart>.narinfo`, `nar/<...>.nar.zst`; see `keys.ts`).
 */

import type { Readable } from 'node:stream';

/** What `head` knows about a stored object. */
export interface ObjectInfo {
  key: string;
  size: number;
  lastModified: Date;
  /** The stored Content-Type, when the backend keeps one (S3 does, a directory does not). */
  contentType: string | undefined;
}

/** One object from a listing. */
export interface ListedObject {
  key: string;
  size: number;
  lastModified: Date;
}

export interface ListOptions {
  /**
   * `true` (the default): every key that starts with the prefix. `false`: only keys with no
   * `/` after the prefix, so `list('', { recursive: false })` yields `nix-cache-info`, the
   * narinfos and listings without walking `nar/` (S3: `Delimiter: '/'`).
   */
  recursive?: boolean;
}

export interface PutOptions {
  contentType?: string;
  /**
   * Stored as the object's Content-Encoding (S3; a directory keeps only bytes). Nix's own
   * caches mark compressed build logs this way (`log-compression`).
   */
  contentEncoding?: string;
  /** Stored as the object's Cache-Control (for a CDN in front); a directory ignores it. */
  cacheControl?: string;
  signal?: AbortSignal;
}

export interface UploadOptions {
  contentType?: string;
  /** Stored as the object's Cache-Control (for a CDN in front); a directory ignores it. */
  cacheControl?: string;
  /**
   * Expected size in bytes, if known (e.g. the NAR size before compression). Used only to
   * choose part sizes; a wrong hint costs efficiency, never correctness.
   */
  sizeHint?: number;
  /** Aborting stops the upload, removes what was stored of it and rejects with `STORAGE_ABORTED`. */
  signal?: AbortSignal;
  /** Called with the total number of bytes durably stored so far (after each part). */
  onProgress?: (bytesStored: number) => void;
}

export interface UploadResult {
  /** Bytes stored under the key. */
  size: number;
  /** How many parts were sent: 1 for a single PUT or a local write. */
  parts: number;
  /** Whether an S3 multipart upload was used. */
  multipart: boolean;
}

export interface CopyOptions {
  /** Set the destination's Content-Type (S3: metadata replaced rather than copied). */
  contentType?: string;
  /** With contentType: the destination's Cache-Control (a replaced header is otherwise dropped). */
  cacheControl?: string;
}

/**
 * An upload that was started and not finished: an S3 multipart upload, or a temp file of
 * the local directory store. They cost storage invisibly, so prune lists and aborts stale ones.
 */
export interface PendingUpload {
  key: string;
  uploadId: string;
  initiated: Date | undefined;
}

/** A source of bytes for `upload`: a Node Readable or any async iterable of chunks. */
export type ByteSource = AsyncIterable<Uint8Array>;

export interface BlobStore {
  /** Stable identity of the cache (scopes the local index), e.g. `s3://bucket?endpoint=...`. */
  readonly id: string;
  /** For people: which bucket at which endpoint, or which directory. Never a secret. */
  readonly description: string;

  /** Verify that the bucket or directory exists and is reachable with our credentials. */
  check(): Promise<void>;
  /**
   * Open the connections uploads will use, now, answers ignored (a push that will upload
   * calls it before its lease round trips); once per store. Optional: a directory has no
   * connections.
   */
  warm?(): void;
  /** Size and date of an object, or `undefined` when there is none. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /** A small object's bytes (narinfo, nix-cache-info), or `undefined` when there is none. */
  get(key: string, opts?: { signal?: AbortSignal }): Promise<Buffer | undefined>;
  /**
   * An object's bytes as a stream, for objects too big to hold whole (`--verify --deep`
   * reads NARs), or `undefined` when there is none. Retried until the body starts, not
   * after. Optional so that test wrappers need not forward it.
   */
  getStream?(key: string, opts?: { signal?: AbortSignal }): Promise<Readable | undefined>;
  /** Store a small object whole. */
  put(key: string, body: Uint8Array | string, opts?: PutOptions): Promise<void>;
  /**
   * Stream an object of unknown length with bounded memory. The key is written atomically:
   * readers see the old object or the whole new one. On failure nothing is left behind
   * (the multipart upload or temp file is removed), the source is destroyed, and the
   * source's own error (or the storage error) is rethrown.
   */
  upload(key: string, source: ByteSource, opts?: UploadOptions): Promise<UploadResult>;
  /** Objects whose key starts with `prefix`, page by page; order is not specified. */
  list(prefix: string, opts?: ListOptions): AsyncIterable<ListedObject>;
  /** Delete keys; missing keys are fine. Throws `STORAGE_DELETE_FAILED` naming keys that stayed. */
  deleteMany(keys: readonly string[]): Promise<void>;
  /**
   * Server-side copy; `copy(k, k, { contentType })` refreshes an object's LastModified. A
   * missing source rejects with code STORAGE_NO_SUCH_KEY.
   */
  copy(from: string, to: string, opts?: CopyOptions): Promise<void>;
  listMultipartUploads(prefix?: string): AsyncIterable<PendingUpload>;
  /** Abort one pending upload; an upload that is already gone is not an error. */
  abortMultipartUpload(key: string, uploadId: string): Promise<void>;
  /** Wait for operations in progress, then release sockets and handles. Idempotent. */
  close(): Promise<void>;
}
