/**
 * Which S3 cache a configuration names: its identity (which scopes the local index) and its
 * description for people. No SDK here, so commands that only need the index (--status,
 * --clear-cache) name their cache without loading the AWS SDK.
 */
import { checkEndpoint } from '../util/s3-rules.js';
import { StorageOptionsError, describeTarget, type S3Target } from './errors.js';

/** The endpoint as the configuration normalises it (src/util/s3-rules.ts). */
export function normaliseEndpoint(endpoint: string | undefined): string | undefined {
  if (endpoint === undefined) return undefined;
  const r = checkEndpoint(endpoint);
  if (!r.ok) {
    throw new StorageOptionsError(
      `S3 endpoint: ${r.problem}`,
      'write it with its scheme and host only, e.g. http://garage.example.internal:3900',
    );
  }
  return r.url;
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
