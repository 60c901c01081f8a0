/**
 * Endpoint mistakes that S3's own answer hides: `https://` pointed at a plain-HTTP server
 * (TLS fails with EPROTO "wrong version number"), and an endpoint that already ends in the
 * bucket name (`http://host:9000/cache` with bucket "cache"). Pure over the failure, so
 * every request path (SDK errors, a hand-written request) can ask it.
 */
import { LoftError } from '../util/errors.js';
import type { S3Failure, S3Target } from './errors.js';

export type EndpointMistake = {
  code: 'S3_ENDPOINT_NOT_TLS' | 'S3_ENDPOINT_HAS_BUCKET';
  message: string;
  hint: string;
};

function endpointUrl(t: S3Target): URL | undefined {
  if (t.endpoint === undefined) return undefined;
  try {
    return new URL(t.endpoint);
  } catch {
    return undefined;
  }
}

/** TLS spoken to a server that answers in plain HTTP. */
function isPlainHttpAnswer(f: S3Failure, cause: unknown): boolean {
  const text = `${f.code ?? ''} ${f.message ?? ''} ${String((cause as { message?: unknown })?.message ?? '')}`;
  return /EPROTO|wrong version number|ERR_SSL_WRONG_VERSION_NUMBER/i.test(text);
}

/** What went wrong with s3.endpoint, when the failure shows one of the known mistakes. */
export function endpointMistake(
  target: S3Target,
  f: S3Failure,
  cause?: unknown,
): EndpointMistake | undefined {
  const url = endpointUrl(target);
  if (url === undefined) return undefined;
  if (url.protocol === 'https:' && f.status === undefined && isPlainHttpAnswer(f, cause)) {
    const plain = new URL(url);
    plain.protocol = 'http:';
    return {
      code: 'S3_ENDPOINT_NOT_TLS',
      message: `s3.endpoint ${url.origin} says https://, but the server there answers plain HTTP (TLS: wrong version number)`,
      hint: `set s3.endpoint = "${plain.origin}" (or enable TLS on the server)`,
    };
  }
  const segments = url.pathname.split('/').filter((s) => s !== '');
  if (segments.length > 0 && segments[segments.length - 1] === target.bucket) {
    const base = new URL(url);
    base.pathname = segments.slice(0, -1).join('/');
    return {
      code: 'S3_ENDPOINT_HAS_BUCKET',
      message: `s3.endpoint ${t(url)} ends in the bucket name "${target.bucket}": Loft adds the bucket to every request, so they went to the wrong place (${[f.status, f.code].filter((x) => x !== undefined).join(' ') || 'failed'})`,
      hint: `set s3.endpoint = "${base.href.replace(/\/$/, '')}" and keep s3.bucket = "${target.bucket}"`,
    };
  }
  return undefined;
}

function t(u: URL): string {
  return u.href.replace(/\/$/, '');
}

/** A configuration mistake in s3.endpoint, found from a failed request. */
export class S3EndpointError extends LoftError {
  constructor(m: EndpointMistake) {
    super(m.code, 'config', m.message, { hint: m.hint });
  }
}
