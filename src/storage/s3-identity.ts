/**
 * Which S3 cache a configuration names: its identity (which scopes the local index) and its
 * description for people. No SDK here, so commands that only need the index (--status,
 * --clear-cache) name their cache without loading the AWS SDK.
 */
import { StorageOptionsError, describeTarget, type S3Target } from './errors.js';

export function normaliseEndpoint(endpoint: string | undefined): string | undefined {
  if (endpoint === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new StorageOptionsError(
      `S3 endpoint ${JSON.stringify(endpoint)} is not a URL`,
      'write it with its scheme, e.g. http://garage.example.internal:3900',
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new StorageOptionsError(
      `S3 endpoint ${JSON.stringify(endpoint)} must start with http:// or https://`,
    );
  }
  if (url.username || url.password || url.search || url.hash) {
    throw new StorageOptionsError(
      `S3 endpoint ${JSON.stringify(url.origin + url.pathname)} must not carry credentials, a query or a fragment`,
      'give keys as credentials, not in the URL',
    );
  }
  return (url.origin + url.pathname).replace(/\/+$/, '');
}

/** The S3 store's `id` and `description` for a (normalised) target. */
export function s3CacheIdentity(t: S3Target): { id: string; description: string } {
  return {
    id: t.endpoint
      ? `s3://${t.bucket}?endpoint=${t.endpoint.toLowerCase()}`
      : `s3://${t.bucket}?region=${t.region}`,
    description: `S3 ${describeTarget(t)}`,
  };
}
