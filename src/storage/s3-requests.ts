/**
 * The S3 store's request runner: every request goes through `withRetry` with the store's
 * policy and the S3 classifier, is counted so `close()` can drain, and leaves as one of the
 * errors in errors.ts (naming bucket, endpoint and region, never a secret). The adapter
 * (`s3-store.ts`), multipart uploads, listings and deletes all send through one of these.
 */
import type { Logger } from '../util/log.js';
import type { RetryPolicy } from './backoff.js';
import { S3Error, S3ServerError, StoreClosedError, type S3Target } from './errors.js';
import { RetryExhausted, withRetry } from './retry.js';
import { classifyS3Error, statusOf, translateS3Error } from './s3-errors.js';
import { S3Http, errorFromResponse, type S3HttpResponse } from './s3-http.js';
import type { S3Settings } from './s3-options.js';
import { xmlRoot } from './s3-xml.js';

export type Attempt<T> = (attempt: number) => Promise<T>;

export class S3Requests {
  readonly http: S3Http;
  readonly target: S3Target;
  readonly log: Logger;
  readonly description: string;
  readonly #policy: RetryPolicy;
  readonly #onRequest: S3Settings['onRequest'];
  #closing: Promise<void> | undefined;
  #inFlight = 0;
  #idle: (() => void) | undefined;

  constructor(settings: S3Settings, description: string) {
    this.target = settings.target;
    this.description = description;
    this.log = settings.logger;
    this.#policy = settings.policy;
    this.#onRequest = settings.onRequest;
    this.http = new S3Http(settings.http);
  }

  get closing(): boolean {
    return this.#closing !== undefined;
  }

  /** One request with retries, refused once the store is closing; failures leave translated. */
  async run<T>(
    operation: string,
    key: string | undefined,
    fn: Attempt<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    this.assertOpen();
    return this.track(() => this.retry(operation, key, fn, signal));
  }

  assertOpen(): void {
    if (this.#closing) throw new StoreClosedError(this.description);
  }

  /** Counts operations in progress, so close() can wait for them. */
  async track<T>(fn: () => Promise<T>): Promise<T> {
    this.#inFlight++;
    try {
      return await fn();
    } finally {
      if (--this.#inFlight === 0) this.#idle?.();
    }
  }

  /**
   * Retries without the open check: for requests of an operation already under `track`, so
   * a close() that began meanwhile lets it finish rather than failing it halfway.
   */
  async retry<T>(
    operation: string,
    key: string | undefined,
    fn: Attempt<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    try {
      return await withRetry(
        this.#policy,
        {
          classify: (e) => classifyS3Error(e),
          signal,
          onRetry: ({ attempt, delayMs, reason, code }) =>
            this.log.warn('S3 request failed; retrying', {
              operation,
              key,
              bucket: this.target.bucket,
              attempt,
              delayMs,
              reason,
              code,
            }),
        },
        this.#onRequest === undefined ? fn : this.#counted(operation, fn),
      );
    } catch (e) {
      if (e instanceof RetryExhausted) {
        if (e.lastError instanceof S3Error) throw e.lastError;
        throw translateS3Error(e.lastError, this.target, operation, key, e.attempts);
      }
      throw e;
    }
  }

  #counted<T>(operation: string, fn: Attempt<T>): Attempt<T> {
    return async (attempt) => {
      try {
        const r = await fn(attempt);
        this.#onRequest!(operation, 'ok');
        return r;
      } catch (e) {
        this.#onRequest!(operation, String(statusOf(e) ?? 'network'));
        throw e;
      }
    };
  }

  /**
   * A 2xx answer that lacks what S3 promises (an UploadId, an ETag, a continuation token):
   * the server is unwell, as with a 5xx.
   */
  protocolError(operation: string, key: string, what: string): S3ServerError {
    return new S3ServerError(this.target, {
      operation,
      key,
      status: undefined,
      code: 'InvalidResponse',
      message: `the server's answer had ${what}`,
      requestId: undefined,
      attempts: 1,
    });
  }

  /** Waits for operations in progress, then closes the connections; idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#idle = resolve));
      this.http.destroy();
    })();
    return this.#closing;
  }
}

export const isNotFound = (e: unknown) => statusOf(e) === 404;

/** A Last-Modified header or XML date; the epoch when absent or unparsable. */
export function dateOf(s: string | undefined): Date {
  const d = s === undefined ? NaN : Date.parse(s);
  return new Date(Number.isNaN(d) ? 0 : d);
}

/** CompleteMultipartUpload and CopyObject can fail after a 200: the body is an `<Error>`. */
export function throwIfErrorBody(res: S3HttpResponse): S3HttpResponse {
  if (res.body.length > 0 && xmlRoot(res.body.toString('utf8')) === 'Error') {
    throw errorFromResponse(res);
  }
  return res;
}
