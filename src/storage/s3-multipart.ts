/**
 * Multipart upload on S3, as the part sink `streamedUpload` drives: create, upload parts,
 * complete (surviving a lost answer), abort (tolerating an upload already gone). Each call
 * retries through the store's request runner without its open check, because the upload
 * as a whole is already counted (see `S3Requests.retry`).
 */
import type { S3HttpRequest } from './s3-http.js';
import { isNotFound, throwIfErrorBody, type S3Requests } from './s3-requests.js';
import { codeOf } from './s3-errors.js';
import { escapeXml, xmlText } from './s3-xml.js';
import type { CompletedPart, PartSink } from './streamed-upload.js';

/** A whole-object PUT of `key` (small objects, and uploads that fit in one part). */
export function putObjectRequest(
  key: string,
  body: Uint8Array | readonly Uint8Array[],
  headers: Record<string, string>,
  signal?: AbortSignal,
): S3HttpRequest {
  return { method: 'PUT', key, body, headers, signal };
}

/** The sink that stores one upload of `key` with `headers` (content type and friends). */
export function multipartSink(
  req: S3Requests,
  key: string,
  headers: Record<string, string>,
): PartSink {
  const http = req.http;
  return {
    putWhole: async (chunks, _size, signal) => {
      await req.retry(
        'PutObject',
        key,
        () => http.send(putObjectRequest(key, chunks, headers, signal)),
        signal,
      );
    },
    create: async (signal) => {
      const uploadId = await req.retry(
        'CreateMultipartUpload',
        key,
        async () => {
          const res = await http.send({
            method: 'POST',
            key,
            query: [['uploads', '']],
            headers,
            signal,
          });
          return xmlText(res.body.toString('utf8'), 'UploadId');
        },
        signal,
      );
      if (!uploadId) throw req.protocolError('CreateMultipartUpload', key, 'no UploadId');
      return uploadId;
    },
    uploadPart: async (uploadId, partNumber, body, signal) => {
      const etag = await req.retry(
        'UploadPart',
        key,
        async () => {
          const res = await http.send({
            method: 'PUT',
            key,
            query: [
              ['partNumber', String(partNumber)],
              ['uploadId', uploadId],
            ],
            body,
            unsignedPayload: true,
            signal,
          });
          return res.headers.etag;
        },
        signal,
      );
      if (!etag) throw req.protocolError('UploadPart', key, `no ETag for part ${partNumber}`);
      return etag;
    },
    complete: (uploadId, parts, totalSize, signal) =>
      completeUpload(req, key, uploadId, parts, totalSize, signal),
    abort: (uploadId) => abortUpload(req, key, uploadId),
  };
}

async function completeUpload(
  req: S3Requests,
  key: string,
  uploadId: string,
  parts: CompletedPart[],
  totalSize: number,
  signal: AbortSignal,
): Promise<void> {
  const xml =
    '<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
    parts
      .map(
        (p) =>
          `<Part><PartNumber>${p.partNumber}</PartNumber><ETag>${escapeXml(p.etag)}</ETag></Part>`,
      )
      .join('') +
    '</CompleteMultipartUpload>';
  await req.retry(
    'CompleteMultipartUpload',
    key,
    async (attempt) => {
      try {
        const res = await req.http.send({
          method: 'POST',
          key,
          query: [['uploadId', uploadId]],
          headers: { 'content-type': 'application/xml' },
          body: Buffer.from(xml),
          signal,
        });
        throwIfErrorBody(res);
      } catch (e) {
        // An earlier attempt may have completed the upload and lost only the answer: then
        // the upload is gone and the object is there, whole.
        if (attempt > 1 && codeOf(e) === 'NoSuchUpload') {
          const r = await req.http.send({ method: 'HEAD', key, signal });
          if (Number(r.headers['content-length']) === totalSize) return;
        }
        throw e;
      }
    },
    signal,
  );
}

/** Abort one multipart upload; one already gone counts as done. */
export async function abortUpload(req: S3Requests, key: string, uploadId: string): Promise<void> {
  await req.retry('AbortMultipartUpload', key, async () => {
    try {
      await req.http.send({ method: 'DELETE', key, query: [['uploadId', uploadId]] });
    } catch (e) {
      // Already gone (aborted, completed, or a retry of an abort whose answer was lost).
      if (codeOf(e) === 'NoSuchUpload' || isNotFound(e)) return;
      throw e;
    }
  });
}
