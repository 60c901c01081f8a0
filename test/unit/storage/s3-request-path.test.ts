/**
 * The lean S3 request path (s3-http.ts, through the store) against scripted HTTP servers on
 * loopback: what goes on the wire (signed and unsigned headers, payload hashes, bodies),
 * bodies sent again on retry, clock-skew correction, error answers, 200 answers carrying
 * an <Error>, listing pages, timeouts and aborts. RGW checks the signatures themselves in
 * the integration tests (test/integration/storage).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { createS3Store, type S3StoreOptions } from '../../../src/storage/s3-store.js';
import { credentialSource } from '../../../src/storage/s3-credentials.js';
import { isLoftError } from '../../../src/util/errors.js';

interface Seen {
  method: string;
  url: URL;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

type Handler = (req: Seen, res: ServerResponse, n: number) => void;

async function scripted(handler: Handler) {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s: Seen = {
        method: req.method!,
        url: new URL(req.url!, 'http://x'),
        headers: req.headers,
        body: Buffer.concat(chunks),
      };
      seen.push(s);
      handler(s, res, seen.length);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const creds = { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret-test-key' };

function storeAt(endpoint: string, extra: Partial<S3StoreOptions> = {}) {
  return createS3Store({
    bucket: 'cache',
    endpoint,
    credentials: creds,
    retryBaseDelayMs: 1,
    retryMaxDelayMs: 5,
    ...extra,
  });
}

const xmlError = (code: string, message: string) =>
  `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`;

const signedHeadersOf = (s: Seen) =>
  /SignedHeaders=([^,]+),/.exec(String(s.headers.authorization))![1]!.split(';');

test('small bodies carry their sha256, big ones UNSIGNED-PAYLOAD; extra headers are sent unsigned', async () => {
  const srv = await scripted((_, res) => res.end());
  const store = storeAt(srv.endpoint, { extraHeaders: { 'CF-Access-Client-Id': 'client-1' } });
  try {
    const small = Buffer.from('StorePath: /nix/store/x\n');
    const big = randomBytes(64 * 1024);
    await store.put('a.narinfo', small, { contentType: 'text/x-nix-narinfo' });
    await store.put('nar/b.nar.zst', big);
    const [a, b] = srv.seen;
    assert.equal(a!.url.pathname, '/cache/a.narinfo');
    assert.equal(
      a!.headers['x-amz-content-sha256'],
      createHash('sha256').update(small).digest('hex'),
    );
    assert.equal(b!.headers['x-amz-content-sha256'], 'UNSIGNED-PAYLOAD');
    assert.ok(a!.body.equals(small) && b!.body.equals(big));
    for (const s of [a!, b!]) {
      assert.equal(s.headers['cf-access-client-id'], 'client-1');
      assert.ok(!signedHeadersOf(s).includes('cf-access-client-id'));
      assert.ok(signedHeadersOf(s).includes('host') && signedHeadersOf(s).includes('x-amz-date'));
      assert.equal(s.headers.expect, undefined);
      assert.equal(s.headers['content-encoding'], undefined);
      assert.ok(!Object.keys(s.headers).some((h) => h.startsWith('x-amz-checksum')));
      assert.equal(Number(s.headers['content-length']), s.body.length);
    }
    assert.equal(a!.headers['content-type'], 'text/x-nix-narinfo');
    assert.ok(signedHeadersOf(a!).includes('content-type'));
  } finally {
    await store.close();
    await srv.close();
  }
});

test('a request whose connection drops before the answer is sent again with the same body', async () => {
  const srv = await scripted((_, res, n) => {
    if (n === 1) res.socket!.destroy();
    else res.end();
  });
  const store = storeAt(srv.endpoint);
  try {
    const body = randomBytes(200_000);
    await store.put('nar/c.nar.zst', body);
    assert.equal(srv.seen.length, 2);
    assert.ok(srv.seen.every((s) => s.body.equals(body)));
  } finally {
    await store.close();
    await srv.close();
  }
});

test("after RequestTimeTooSkewed the retry is signed with the server's clock", async () => {
  const serverNow = Date.now() + 3600_000;
  const stamp = (s: Seen) => {
    const d = String(s.headers['x-amz-date']);
    return Date.UTC(
      +d.slice(0, 4),
      +d.slice(4, 6) - 1,
      +d.slice(6, 8),
      +d.slice(9, 11),
      +d.slice(11, 13),
      +d.slice(13, 15),
    );
  };
  const srv = await scripted((s, res) => {
    res.setHeader('Date', new Date(serverNow).toUTCString());
    if (Math.abs(stamp(s) - serverNow) > 15 * 60_000) {
      res.statusCode = 403;
      res.end(xmlError('RequestTimeTooSkewed', 'The difference is too large.'));
    } else res.end();
  });
  const store = storeAt(srv.endpoint);
  try {
    await store.put('d.narinfo', 'x');
    assert.equal(srv.seen.length, 2);
    assert.ok(Math.abs(stamp(srv.seen[1]!) - serverNow) < 60_000);
  } finally {
    await store.close();
    await srv.close();
  }
});

test('error answers become the store errors: code, message, request id; 404s are "none"', async () => {
  const srv = await scripted((s, res) => {
    if (s.url.pathname === '/cache/denied.narinfo') {
      res.statusCode = 403;
      res.setHeader('x-amz-request-id', 'req-42');
      res.end(
        xmlError('SignatureDoesNotMatch', 'The request signature we calculated does not match'),
      );
    } else if (s.method === 'GET') {
      res.statusCode = 404;
      res.end(xmlError('NoSuchKey', 'The specified key does not exist.'));
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  const store = storeAt(srv.endpoint);
  try {
    await assert.rejects(store.put('denied.narinfo', 'x'), (e: unknown) => {
      assert.ok(isLoftError(e));
      assert.equal(e.code, 'S3_ACCESS_DENIED');
      assert.match(e.message, /403 SignatureDoesNotMatch: The request signature we calculated/);
      assert.equal(
        (e as unknown as { failure: { requestId: string } }).failure.requestId,
        'req-42',
      );
      assert.doesNotMatch(e.message, /secret-test-key/);
      return true;
    });
    assert.equal(await store.get('missing.narinfo'), undefined);
    assert.equal(await store.head('missing.narinfo'), undefined);
    assert.equal(srv.seen.length, 3, 'permanent errors are not retried');
  } finally {
    await store.close();
    await srv.close();
  }
});

test('503 SlowDown with Retry-After waits that long, then succeeds', async () => {
  const srv = await scripted((_, res, n) => {
    if (n === 1) {
      res.statusCode = 503;
      res.setHeader('Retry-After', '1');
      res.end(xmlError('SlowDown', 'Please reduce your request rate.'));
    } else res.end();
  });
  const store = storeAt(srv.endpoint);
  try {
    const t = performance.now();
    await store.put('e.narinfo', 'x');
    assert.ok(performance.now() - t >= 950, 'waited for Retry-After');
    assert.equal(srv.seen.length, 2);
  } finally {
    await store.close();
    await srv.close();
  }
});

test('a multipart upload: parts unsigned, Complete lists the ETags, a 200 <Error> is retried', async () => {
  let completes = 0;
  const srv = await scripted((s, res) => {
    const q = s.url.searchParams;
    if (s.method === 'POST' && q.has('uploads')) {
      res.end(
        '<InitiateMultipartUploadResult><UploadId>up&amp;1</UploadId></InitiateMultipartUploadResult>',
      );
    } else if (s.method === 'PUT' && q.has('partNumber')) {
      assert.equal(q.get('uploadId'), 'up&1');
      res.setHeader('ETag', `"etag-${q.get('partNumber')}"`);
      res.end();
    } else if (s.method === 'POST' && q.get('uploadId') === 'up&1') {
      completes++;
      res.end(
        completes === 1
          ? xmlError('InternalError', 'We encountered an internal error.')
          : '<CompleteMultipartUploadResult><ETag></ETag></CompleteMultipartUploadResult>',
      );
    } else {
      res.statusCode = 400;
      res.end(xmlError('BadRequest', `unexpected ${s.method} ${s.url.pathname}${s.url.search}`));
    }
  });
  const MiB = 1024 * 1024;
  const store = storeAt(srv.endpoint, { partSize: 5 * MiB });
  try {
    const data = randomBytes(11 * MiB);
    const r = await store.upload(
      'nar/f.nar.zst',
      Readable.from([data.subarray(0, 7 * MiB), data.subarray(7 * MiB)]),
    );
    assert.deepEqual(r, { size: data.length, parts: 3, multipart: true });
    const parts = srv.seen.filter((s) => s.url.searchParams.has('partNumber'));
    assert.ok(parts.every((p) => p.headers['x-amz-content-sha256'] === 'UNSIGNED-PAYLOAD'));
    const sorted = [...parts].sort(
      (a, b) =>
        Number(a.url.searchParams.get('partNumber')) - Number(b.url.searchParams.get('partNumber')),
    );
    assert.ok(Buffer.concat(sorted.map((p) => p.body)).equals(data));
    const complete = srv.seen.filter(
      (s) => s.method === 'POST' && s.url.searchParams.has('uploadId'),
    );
    assert.equal(complete.length, 2);
    assert.equal(
      complete[1]!.body.toString(),
      '<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
        [1, 2, 3]
          .map(
            (n) => `<Part><PartNumber>${n}</PartNumber><ETag>&quot;etag-${n}&quot;</ETag></Part>`,
          )
          .join('') +
        '</CompleteMultipartUpload>',
    );
  } finally {
    await store.close();
    await srv.close();
  }
});

test('a listing follows continuation tokens and decodes XML entities in keys', async () => {
  const srv = await scripted((s, res) => {
    const token = s.url.searchParams.get('continuation-token');
    res.end(
      token === null
        ? '<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>t/1=</NextContinuationToken>' +
            '<Contents><Key>a&amp;b.narinfo</Key><Size>12</Size><LastModified>2026-01-02T03:04:05.000Z</LastModified></Contents></ListBucketResult>'
        : '<ListBucketResult><IsTruncated>false</IsTruncated>' +
            '<Contents><Key>c.narinfo</Key><Size>7</Size><LastModified>2026-01-02T03:04:06.000Z</LastModified></Contents></ListBucketResult>',
    );
  });
  const store = storeAt(srv.endpoint);
  try {
    const got = [];
    for await (const o of store.list('', { recursive: false })) got.push(o);
    assert.deepEqual(got, [
      { key: 'a&b.narinfo', size: 12, lastModified: new Date('2026-01-02T03:04:05.000Z') },
      { key: 'c.narinfo', size: 7, lastModified: new Date('2026-01-02T03:04:06.000Z') },
    ]);
    assert.equal(srv.seen[0]!.url.searchParams.get('list-type'), '2');
    assert.equal(srv.seen[0]!.url.searchParams.get('delimiter'), '/');
    assert.equal(srv.seen[1]!.url.searchParams.get('continuation-token'), 't/1=');
  } finally {
    await store.close();
    await srv.close();
  }
});

test('a stalled answer times out (and is retried); an abort stops a request at once', async () => {
  const srv = await scripted(() => {
    // never answers
  });
  const store = storeAt(srv.endpoint, { idleTimeoutMs: 150, maxAttempts: 2 });
  try {
    await assert.rejects(store.head('slow.narinfo'), (e: unknown) => {
      assert.ok(isLoftError(e));
      assert.equal(e.code, 'S3_UNREACHABLE');
      return true;
    });
    assert.equal(srv.seen.length, 2);
    const ac = new AbortController();
    const reason = new Error('stop now');
    setTimeout(() => ac.abort(reason), 50);
    const t = performance.now();
    await assert.rejects(store.get('slow2.narinfo', { signal: ac.signal }), (e) => e === reason);
    assert.ok(performance.now() - t < 140, 'aborted before the idle timeout');
  } finally {
    await store.close();
    await srv.close();
  }
});

test('keys in the environment (with a session token) are used when no profile is asked for; explicit keys win', async () => {
  const env = {
    AWS_ACCESS_KEY_ID: 'AKIDENV',
    AWS_SECRET_ACCESS_KEY: 'env-secret',
    AWS_SESSION_TOKEN: 'tok',
  };
  const fromEnv = await credentialSource({
    credentials: undefined,
    profile: undefined,
    region: 'us-east-1',
    env,
  })();
  assert.deepEqual(fromEnv, {
    accessKeyId: 'AKIDENV',
    secretAccessKey: 'env-secret',
    sessionToken: 'tok',
  });
  const explicit = await credentialSource({
    credentials: creds,
    profile: 'p',
    region: 'us-east-1',
    env,
  })();
  assert.deepEqual(explicit, creds);
});
