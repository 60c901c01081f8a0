/**
 * What the S3 store is configured with: credentials and the guard on extra headers. The
 * requests themselves go through the lean request path (`s3-http.ts`); the AWS SDK is kept
 * only for the credential chain (`s3-credentials.ts`).
 */
import { checkHeaderName, checkHeaderValue } from '../util/http-header.js';
import { StorageOptionsError } from './errors.js';

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/**
 * The store's own guard on extra headers, for callers that did not come through `src/config`
 * (which checks the same rules at start-up and lists every problem). A CR, LF or NUL in a
 * value would split the request. Messages name the header, never its value.
 */
export function checkExtraHeaders(
  headers: Record<string, string> | undefined,
): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const seen = new Set<string>();
  for (const [name, value] of Object.entries(headers ?? {})) {
    const problem =
      checkHeaderName(name) ??
      (typeof value === 'string' ? checkHeaderValue(value) : 'the value is not a string');
    if (problem !== undefined) {
      throw new StorageOptionsError(
        `extra header ${JSON.stringify(name)}: ${problem}`,
        'extra headers are for proxies in front of S3 (e.g. CF-Access-Client-Id) and must be one line',
      );
    }
    const lower = name.toLowerCase();
    if (seen.has(lower)) {
      throw new StorageOptionsError(`extra header "${name}" is given twice (names ignore case)`);
    }
    seen.add(lower);
    out.push([name, value]);
  }
  return out;
}
