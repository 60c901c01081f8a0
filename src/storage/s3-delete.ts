/**
 * Deleting many keys on S3: batches of up to 1000 through DeleteObjects, and, once a server
 * shows it rejects batch delete, single DeleteObject requests in parallel from then on.
 * Keys already gone count as deleted; the others that failed are gathered into one
 * StorageDeleteError, except access and bucket errors, which fail every key alike and so
 * leave at once.
 */
import { createHash } from 'node:crypto';
import { meaningOf } from '../util/failure-policy.js';
import { S3Error, StorageDeleteError } from './errors.js';
import { assertValidKey } from './keys.js';
import { isNotFound, type S3Requests } from './s3-requests.js';
import { escapeXml, xmlBlocks, xmlText } from './s3-xml.js';

const BATCH_DELETE_MAX = 1000;

interface Failed {
  key: string;
  reason: string;
}

export class S3Deleter {
  readonly #req: S3Requests;
  readonly #concurrency: number;
  #batchDeleteUnsupported = false;

  constructor(req: S3Requests, concurrency: number) {
    this.#req = req;
    this.#concurrency = concurrency;
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    const unique = [...new Set(keys)];
    unique.forEach(assertValidKey);
    const failed: Failed[] = [];
    let deleted = 0;
    for (let i = 0; i < unique.length; i += BATCH_DELETE_MAX) {
      const chunk = unique.slice(i, i + BATCH_DELETE_MAX);
      if (!this.#batchDeleteUnsupported) {
        try {
          const xml = await this.#req.run('DeleteObjects', undefined, () => this.#batch(chunk));
          const errs = xmlBlocks(xml, 'Error')
            .map((x) => ({ key: xmlText(x, 'Key'), code: xmlText(x, 'Code') }))
            .filter((x) => x.code !== 'NoSuchKey');
          for (const x of errs) failed.push({ key: x.key ?? '?', reason: x.code ?? 'error' });
          deleted += chunk.length - errs.length;
          continue;
        } catch (e) {
          if (!(e instanceof S3Error) || !rejectsBatchDelete(e)) throw e;
          this.#batchDeleteUnsupported = true;
          this.#req.log.warn(
            'S3 server rejects batch delete (DeleteObjects); deleting one by one',
            {
              bucket: this.#req.target.bucket,
              status: e.failure.status,
              code: e.failure.code,
            },
          );
        }
      }
      const r = await this.#singly(chunk);
      deleted += r.deleted;
      failed.push(...r.failed);
    }
    if (failed.length > 0) throw new StorageDeleteError(this.#req.description, failed, deleted);
  }

  // Some servers (older MinIO, B2) honour only Content-MD5 on DeleteObjects; it is cheap on
  // a small XML body, so it is always sent, signed.
  async #batch(keys: string[]): Promise<string> {
    const body = Buffer.from(
      '<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet>' +
        keys.map((k) => `<Object><Key>${escapeXml(k)}</Key></Object>`).join('') +
        '</Delete>',
    );
    const res = await this.#req.http.send({
      method: 'POST',
      query: [['delete', '']],
      headers: {
        'content-type': 'application/xml',
        'content-md5': createHash('md5').update(body).digest('base64'),
      },
      body,
    });
    return res.body.toString('utf8');
  }

  async #singly(keys: string[]): Promise<{ deleted: number; failed: Failed[] }> {
    const failed: Failed[] = [];
    let deleted = 0;
    let next = 0;
    let fatal: { error: unknown } | undefined;
    const worker = async () => {
      while (next < keys.length && !fatal) {
        const key = keys[next++]!;
        try {
          await this.#req.run('DeleteObject', key, async () => {
            try {
              await this.#req.http.send({ method: 'DELETE', key });
            } catch (e) {
              if (!isNotFound(e)) throw e;
            }
          });
          deleted++;
        } catch (e) {
          // A failure about this key (or a server still failing) is this key's; access,
          // bucket and outage errors fail every key alike: say so once, now.
          if (e instanceof S3Error && isKeyFailure(e)) {
            failed.push({ key, reason: String(e.failure.code ?? e.failure.status) });
          } else fatal ??= { error: e };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, keys.length) }, worker));
    if (fatal) throw fatal.error;
    return { deleted, failed };
  }
}

function isKeyFailure(e: S3Error): boolean {
  const m = meaningOf(e);
  return m === 'path' || m === 'retry-request' || m === 'retry-path';
}

function rejectsBatchDelete(e: S3Error): boolean {
  const { status, code } = e.failure;
  return (
    status === 501 || status === 405 || code === 'NotImplemented' || code === 'MethodNotAllowed'
  );
}
