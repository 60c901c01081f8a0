/**
 * The SigV4 signer against AWS's published vectors: the Signature Version 4 test suite
 * (credentials AKIDEXAMPLE, 20150830T123600Z, us-east-1, service "service"; canonical
 * requests and signatures as published) and the S3 documentation's GetObject example
 * (with x-amz-content-sha256 and a Range header).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  EMPTY_SHA256,
  SigV4Signer,
  amzDate,
  canonicalQuery,
  uriEncode,
  uriEncodePath,
  type SignInput,
} from '../../../src/storage/sigv4.js';

const suiteCreds = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
};
const scope = 'AKIDEXAMPLE/20150830/us-east-1/service/aws4_request';

function suite(
  method: string,
  query: [string, string][],
  extra: Record<string, string> = {},
): SignInput {
  return {
    method,
    canonicalUri: '/',
    query,
    headers: { host: 'example.amazonaws.com', 'x-amz-date': '20150830T123600Z', ...extra },
    payloadHash: EMPTY_SHA256,
    region: 'us-east-1',
    service: 'service',
    amzDate: '20150830T123600Z',
  };
}

const vectors: { name: string; input: SignInput; signedHeaders: string; signature: string }[] = [
  {
    name: 'get-vanilla',
    input: suite('GET', []),
    signedHeaders: 'host;x-amz-date',
    signature: '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
  },
  {
    name: 'get-vanilla-empty-query-key',
    input: suite('GET', [['Param1', 'value1']]),
    signedHeaders: 'host;x-amz-date',
    signature: 'a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb',
  },
  {
    name: 'get-vanilla-query-order-key (same key: ordered by value)',
    input: suite('GET', [
      ['Param1', 'value2'],
      ['Param1', 'Value1'],
    ]),
    signedHeaders: 'host;x-amz-date',
    signature: 'eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1',
  },
  {
    name: 'get-vanilla-query-order-key-case (ordered by key)',
    input: suite('GET', [
      ['Param2', 'value2'],
      ['Param1', 'value1'],
    ]),
    signedHeaders: 'host;x-amz-date',
    signature: 'b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500',
  },
  {
    name: 'post-vanilla',
    input: suite('POST', []),
    signedHeaders: 'host;x-amz-date',
    signature: '5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b',
  },
  {
    name: 'post-vanilla-query',
    input: suite('POST', [['Param1', 'value1']]),
    signedHeaders: 'host;x-amz-date',
    signature: '28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11',
  },
  {
    name: 'post-sts-header-before (session token signed)',
    input: suite('POST', [], {
      'x-amz-security-token':
        'AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==',
    }),
    signedHeaders: 'host;x-amz-date;x-amz-security-token',
    signature: '85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead',
  },
];

for (const v of vectors) {
  test(`SigV4 test suite vector ${v.name} gives the published Authorization`, () => {
    const signed = new SigV4Signer(() => suiteCreds).sign(v.input);
    assert.equal(
      signed.authorization,
      `AWS4-HMAC-SHA256 Credential=${scope}, SignedHeaders=${v.signedHeaders}, Signature=${v.signature}`,
    );
  });
}

test('the get-vanilla canonical request and string to sign are the published ones', () => {
  const s = new SigV4Signer(() => suiteCreds).sign(suite('GET', []));
  assert.equal(
    s.canonicalRequest,
    `GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n${EMPTY_SHA256}`,
  );
  assert.equal(
    s.stringToSign,
    'AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n' +
      'bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63',
  );
});

test("the S3 documentation's GetObject example (Range, x-amz-content-sha256) signs as published", () => {
  const signer = new SigV4Signer(() => ({
    accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
    secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  }));
  const s = signer.sign({
    method: 'GET',
    canonicalUri: '/test.txt',
    query: [],
    headers: {
      host: 'examplebucket.s3.amazonaws.com',
      range: 'bytes=0-9',
      'x-amz-content-sha256': EMPTY_SHA256,
      'x-amz-date': '20130524T000000Z',
    },
    payloadHash: EMPTY_SHA256,
    region: 'us-east-1',
    service: 's3',
    amzDate: '20130524T000000Z',
  });
  assert.match(
    s.stringToSign,
    /\n7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972$/,
  );
  assert.equal(
    s.authorization,
    'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, ' +
      'SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, ' +
      'Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
  );
});

test('a changed secret or day derives a new signing key (the cache is keyed on both)', () => {
  let secret = suiteCreds.secretAccessKey;
  const signer = new SigV4Signer(() => ({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: secret }));
  const a = signer.sign(suite('GET', [])).authorization;
  secret = 'another-secret';
  const b = signer.sign(suite('GET', [])).authorization;
  secret = suiteCreds.secretAccessKey;
  const next = { ...suite('GET', []), amzDate: '20150831T000000Z' };
  next.headers = { ...next.headers, 'x-amz-date': '20150831T000000Z' };
  const c = signer.sign(next).authorization;
  assert.notEqual(a, b);
  assert.match(c, /Credential=AKIDEXAMPLE\/20150831\//);
  assert.equal(signer.sign(suite('GET', [])).authorization, a);
});

test('URI encoding keeps only unreserved characters and the slashes of a key', () => {
  assert.equal(uriEncode("a b+c/d~e_f.g-h!'()*"), 'a%20b%2Bc%2Fd~e_f.g-h%21%27%28%29%2A');
  assert.equal(uriEncodePath('nar/x y+z.nar.zst'), 'nar/x%20y%2Bz.nar.zst');
  assert.equal(uriEncode('é'), '%C3%A9');
  assert.equal(
    canonicalQuery([
      ['uploadId', 'a/b=c'],
      ['partNumber', '2'],
    ]),
    'partNumber=2&uploadId=a%2Fb%3Dc',
  );
  assert.equal(amzDate(Date.UTC(2015, 7, 30, 12, 36, 0, 123)), '20150830T123600Z');
});
