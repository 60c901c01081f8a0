/**
 * Retry classification and translation over the shapes the SDK gives errors (status in
 * $metadata, code as name, headers in $response; network errors with a Node code). The
 * integration tests check the same against real RGW answers and real dropped connections.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  classifyS3Error,
  s3FailureCode,
  translateS3Error,
} from '../../../src/storage/s3-errors.js';
import { describeError } from '../../../src/util/errors.js';

function serviceError(status: number, code: string, headers: Record<string, string> = {}) {
  const e = Object.assign(new Error('UnknownError'), {
    name: code,
    Code: code,
    $metadata: { httpStatusCode: status, requestId: 'tx-1' },
  });
  Object.defineProperty(e, '$response', { value: { statusCode: status, headers } });
  return e;
}
const netError = (code: string) =>
  Object.assign(new Error(`connect ${code}`), { code, $metadata: {} });
const target = { bucket: 'cache', endpoint: 'http://127.0.0.1:7480', region: 'us-east-1' };

test('5xx, 429, SlowDown, timeouts and resets are retried; other 4xx are not', () => {
  // 5xx means the server is unwell, except "not implemented", which will not change.
  const yes = [
    serviceError(500, 'InternalError'),
    serviceError(502, 'BadGateway'),
    serviceError(503, 'SlowDown'),
    serviceError(429, 'TooManyRequests'),
    serviceError(400, 'RequestTimeout'),
    serviceError(403, 'RequestTimeTooSkewed'),
    netError('ECONNRESET'),
    netError('ECONNREFUSED'),
    netError('EPIPE'),
    Object.assign(new Error('socket timed out'), { name: 'TimeoutError' }),
  ];
  const no = [
    serviceError(400, 'InvalidArgument'),
    serviceError(403, 'SignatureDoesNotMatch'),
    serviceError(403, 'AccessDenied'),
    serviceError(404, 'NoSuchBucket'),
    serviceError(404, 'NoSuchKey'),
    serviceError(409, 'BucketNotEmpty'),
    serviceError(501, 'NotImplemented'),
    Object.assign(new Error('aborted'), { name: 'AbortError' }),
    netError('ENOTFOUND'),
    new Error('plain bug'),
  ];
  for (const e of yes) assert.equal(classifyS3Error(e).retry, true, `${e.name} ${e.message}`);
  for (const e of no) assert.equal(classifyS3Error(e).retry, false, `${e.name} ${e.message}`);
});

test('Retry-After on a throttling answer is read', () => {
  const v = classifyS3Error(serviceError(503, 'SlowDown', { 'retry-after': '2' }));
  assert.deepEqual(v, {
    retry: true,
    reason: '503 SlowDown',
    code: 'S3_SERVER_ERROR',
    retryAfterMs: 2000,
  });
});

test('each failure maps to its registry code', () => {
  const cases: [unknown, string][] = [
    [serviceError(500, 'InternalError'), 'S3_SERVER_ERROR'],
    [serviceError(503, 'ServiceUnavailable'), 'S3_SERVER_ERROR'],
    [serviceError(429, 'TooManyRequests'), 'S3_SERVER_ERROR'],
    // Throttling and timeouts with a 4xx status are still the server's state, not the request's.
    [serviceError(400, 'RequestTimeout'), 'S3_SERVER_ERROR'],
    [serviceError(400, 'SlowDown'), 'S3_SERVER_ERROR'],
    [serviceError(403, 'RequestTimeTooSkewed'), 'S3_CLOCK_SKEW'],
    [serviceError(501, 'NotImplemented'), 'S3_REQUEST_FAILED'],
    [serviceError(505, 'HttpVersionNotSupported'), 'S3_REQUEST_FAILED'],
    [serviceError(400, 'InvalidArgument'), 'S3_REQUEST_FAILED'],
    [serviceError(403, 'Forbidden'), 'S3_ACCESS_DENIED'],
    [serviceError(404, 'NoSuchKey'), 'STORAGE_NO_SUCH_KEY'],
    [serviceError(404, 'NoSuchBucket'), 'S3_NO_SUCH_BUCKET'],
    [serviceError(301, 'PermanentRedirect'), 'S3_WRONG_REGION'],
    [netError('ECONNRESET'), 'S3_NO_ANSWER'],
    [Object.assign(new Error('timed out'), { name: 'TimeoutError' }), 'S3_NO_ANSWER'],
    [netError('ENOTFOUND'), 'S3_UNREACHABLE'],
    [netError('CERT_HAS_EXPIRED'), 'S3_UNREACHABLE'],
    [netError('ERR_TLS_CERT_ALTNAME_INVALID'), 'S3_UNREACHABLE'],
    // Node's argument errors and plain errors are bugs, not an unreachable server.
    [netError('ERR_INVALID_ARG_TYPE'), 'S3_REQUEST_FAILED'],
    [new TypeError('x is undefined'), 'S3_REQUEST_FAILED'],
  ];
  for (const [e, code] of cases) assert.equal(s3FailureCode(e), code, String(e));
});

test('a failure still retryable when the tries run out leaves as the policy says', () => {
  const skew = translateS3Error(
    serviceError(403, 'RequestTimeTooSkewed'),
    target,
    'PutObject',
    'k',
    5,
  );
  assert.equal(skew.code, 'S3_ACCESS_DENIED');
  assert.match(describeError(skew), /clock/);
  const reset = translateS3Error(netError('ECONNRESET'), target, 'PutObject', 'k', 5);
  assert.equal(reset.code, 'S3_UNREACHABLE');
  const tls = translateS3Error(netError('CERT_HAS_EXPIRED'), target, 'HeadBucket', undefined, 1);
  assert.equal(tls.code, 'S3_UNREACHABLE');
  const bug = translateS3Error(new TypeError('x is undefined'), target, 'HeadBucket', undefined, 1);
  assert.equal(bug.code, 'S3_REQUEST_FAILED');
});

test('final failures become errors that say what to check', () => {
  const denied = translateS3Error(
    serviceError(403, 'SignatureDoesNotMatch'),
    target,
    'PutObject',
    'x.narinfo',
    1,
  );
  assert.equal(denied.code, 'S3_ACCESS_DENIED');
  assert.match(
    denied.message,
    /PutObject of "x.narinfo".*bucket "cache" at http:\/\/127.0.0.1:7480 \(region us-east-1\).*403 SignatureDoesNotMatch/,
  );
  assert.ok(!denied.message.includes('UnknownError'));
  assert.match(describeError(denied), /access key.*secret key.*region.*clock/);

  assert.equal(
    translateS3Error(serviceError(404, 'NoSuchBucket'), target, 'ListObjectsV2', undefined, 1).code,
    'S3_NO_SUCH_BUCKET',
  );
  assert.equal(
    translateS3Error(
      serviceError(400, 'AuthorizationHeaderMalformed'),
      target,
      'HeadBucket',
      undefined,
      1,
    ).code,
    'S3_WRONG_REGION',
  );
  const down = translateS3Error(netError('ECONNREFUSED'), target, 'HeadObject', 'k', 5);
  assert.equal(down.code, 'S3_UNREACHABLE');
  assert.match(down.message, /cannot reach S3.*127.0.0.1:7480.*ECONNREFUSED \(after 5 attempts\)/);
  assert.equal(
    translateS3Error(netError('ENOTFOUND'), target, 'HeadObject', 'k', 1).code,
    'S3_UNREACHABLE',
  );
  const slow = translateS3Error(serviceError(503, 'SlowDown'), target, 'UploadPart', 'nar/a', 5);
  assert.equal(slow.code, 'S3_SERVER_ERROR');
  assert.match(slow.message, /503 SlowDown \(after 5 attempts\)/);
  const creds = translateS3Error(
    Object.assign(new Error('Could not load credentials from any providers'), {
      name: 'CredentialsProviderError',
    }),
    target,
    'HeadBucket',
    undefined,
    1,
  );
  assert.equal(creds.code, 'S3_NO_CREDENTIALS');
  assert.match(describeError(creds), /AWS_ACCESS_KEY_ID/);
});

test('translated errors keep no reference to the SDK error', () => {
  const sdk = serviceError(403, 'SignatureDoesNotMatch');
  (sdk as unknown as Record<string, string>).CanonicalRequest = 'x-amz-security-token:SECRET';
  const e = translateS3Error(sdk, target, 'PutObject', 'k', 1);
  assert.equal(e.cause, undefined);
  assert.ok(!JSON.stringify(e).includes('SECRET'));
});
