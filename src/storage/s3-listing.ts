/**
 * Paginated S3 listings: objects (ListObjectsV2, continuation tokens) and pending multipart
 * uploads (ListMultipartUploads, key and upload-id markers). A truncated page without the
 * marker to continue from is a protocol error, not a silent end.
 */
import type { ListOptions, ListedObject, PendingUpload } from './port.js';
import { dateOf, type S3Requests } from './s3-requests.js';
import { xmlBlocks, xmlText } from './s3-xml.js';

async function page(
  req: S3Requests,
  operation: string,
  prefix: string,
  query: [string, string][],
): Promise<string> {
  return req.run(operation, prefix || undefined, async () =>
    (await req.http.send({ method: 'GET', query })).body.toString('utf8'),
  );
}

export async function* listObjects(
  req: S3Requests,
  prefix: string,
  opts: ListOptions,
): AsyncIterable<ListedObject> {
  let token: string | undefined;
  do {
    const query: [string, string][] = [['list-type', '2']];
    if (prefix) query.push(['prefix', prefix]);
    if (opts.recursive === false) query.push(['delimiter', '/']);
    if (token !== undefined) query.push(['continuation-token', token]);
    const xml = await page(req, 'ListObjectsV2', prefix, query);
    for (const o of xmlBlocks(xml, 'Contents')) {
      const k = xmlText(o, 'Key');
      if (k === undefined) continue;
      yield {
        key: k,
        size: Number(xmlText(o, 'Size') ?? 0),
        lastModified: dateOf(xmlText(o, 'LastModified')),
      };
    }
    const truncated = xmlText(xml, 'IsTruncated') === 'true';
    token = truncated ? xmlText(xml, 'NextContinuationToken') : undefined;
    if (truncated && !token) {
      throw req.protocolError('ListObjectsV2', prefix, 'IsTruncated without a continuation token');
    }
  } while (token);
}

export async function* listPendingUploads(
  req: S3Requests,
  prefix: string,
): AsyncIterable<PendingUpload> {
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (;;) {
    const query: [string, string][] = [['uploads', '']];
    if (prefix) query.push(['prefix', prefix]);
    if (keyMarker !== undefined) query.push(['key-marker', keyMarker]);
    if (uploadIdMarker !== undefined) query.push(['upload-id-marker', uploadIdMarker]);
    const xml = await page(req, 'ListMultipartUploads', prefix, query);
    for (const u of xmlBlocks(xml, 'Upload')) {
      const k = xmlText(u, 'Key');
      const uploadId = xmlText(u, 'UploadId');
      if (k === undefined || uploadId === undefined) continue;
      const initiated = xmlText(u, 'Initiated');
      yield { key: k, uploadId, initiated: initiated ? dateOf(initiated) : undefined };
    }
    if (xmlText(xml, 'IsTruncated') !== 'true') return;
    keyMarker = xmlText(xml, 'NextKeyMarker') || undefined;
    uploadIdMarker = xmlText(xml, 'NextUploadIdMarker') || undefined;
    if (keyMarker === undefined) {
      throw req.protocolError(
        'ListMultipartUploads',
        prefix,
        'IsTruncated without a NextKeyMarker',
      );
    }
  }
}
