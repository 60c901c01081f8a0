/**
 * The HTTP/1.1 response parser of the S3 request path, on hand-written responses, each also
 * fed split at every byte (a TCP read may end anywhere): status and fields, bodies framed by
 * Content-Length, chunked coding and the connection's end, interim 1xx answers, answers
 * with no body, whether the connection may be reused, and what it refuses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ResponseParser, type ResponseHead } from '../../../src/storage/http1-response.js';

interface Seen {
  heads: ResponseHead[];
  parts: Buffer[];
  ends: number;
  parser: ResponseParser;
  readonly body: Buffer;
}

/** Feed `wire` in pieces of the given sizes (the rest in one); what the sink saw, live. */
function parse(wire: string | Buffer, pieces: number[] = [], headRequest = false): Seen {
  const bytes = typeof wire === 'string' ? Buffer.from(wire, 'latin1') : wire;
  const seen: Seen = {
    heads: [],
    parts: [],
    ends: 0,
    parser: undefined as unknown as ResponseParser,
    get body() {
      return Buffer.concat(this.parts);
    },
  };
  seen.parser = new ResponseParser(
    {
      head: (h) => seen.heads.push(h),
      // Copied at once: a piece may be a view of bytes the caller reuses.
      body: (c) => seen.parts.push(Buffer.from(c)),
      end: () => seen.ends++,
    },
    { headRequest },
  );
  let at = 0;
  for (const n of pieces) {
    seen.parser.push(bytes.subarray(at, at + n));
    at += n;
  }
  if (at < bytes.length) seen.parser.push(bytes.subarray(at));
  return seen;
}

/** The same response split once at every byte, and byte by byte. */
function everySplit(wire: string, check: (s: Seen, how: string) => void, headRequest = false) {
  check(parse(wire, [], headRequest), 'whole');
  check(parse(wire, Array(wire.length).fill(1), headRequest), 'byte by byte');
  for (let i = 1; i < wire.length; i++) check(parse(wire, [i], headRequest), `split at ${i}`);
}

test('a Content-Length body, split anywhere: status, fields in lower case, body, one end, reusable', () => {
  const wire =
    'HTTP/1.1 200 OK\r\nETag: "abc"\r\nX-Amz-Request-Id: tx1\r\nContent-Length: 11\r\n\r\nhello world';
  everySplit(wire, (s, how) => {
    assert.deepEqual(
      s.heads,
      [
        {
          status: 200,
          headers: { etag: '"abc"', 'x-amz-request-id': 'tx1', 'content-length': '11' },
        },
      ],
      how,
    );
    assert.equal(s.body.toString(), 'hello world', how);
    assert.equal(s.ends, 1, how);
    assert.ok(s.parser.reusable, how);
  });
});

test('a chunked body with extensions and trailers, split anywhere, is the chunks joined', () => {
  const wire =
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' +
    '5;name=value\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n';
  everySplit(wire, (s, how) => {
    assert.equal(s.body.toString(), 'hello 0123456789', how);
    assert.equal(s.ends, 1, how);
    assert.ok(s.parser.reusable, how);
  });
});

test('interim 100 Continue answers are skipped; the final head is the one reported', () => {
  const wire =
    'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok';
  everySplit(wire, (s, how) => {
    assert.deepEqual(
      s.heads.map((h) => h.status),
      [201],
      how,
    );
    assert.equal(s.body.toString(), 'ok', how);
  });
});

test('HEAD answers and 204/304 have no body whatever their Content-Length says', () => {
  const head = parse('HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n', [], true);
  assert.equal(head.ends, 1);
  assert.equal(head.heads[0]!.headers['content-length'], '1234');
  assert.ok(head.parser.reusable);
  for (const status of [204, 304]) {
    const s = parse(`HTTP/1.1 ${status} X\r\nContent-Length: 5\r\n\r\n`);
    assert.equal(s.ends, 1, String(status));
    assert.equal(s.body.length, 0);
    assert.ok(s.parser.reusable);
  }
});

test('a body without length or chunking runs to the end of the connection, which is then not reused', () => {
  const s = parse('HTTP/1.1 200 OK\r\n\r\nsome ', [20]);
  s.parser.push(Buffer.from('bytes'));
  assert.equal(s.ends, 0);
  s.parser.eof();
  assert.equal(s.ends, 1);
  assert.ok(s.parser.done);
  assert.equal(s.parser.reusable, false);
});

test('Connection: close, and HTTP/1.0 without keep-alive, forbid reuse; HTTP/1.0 keep-alive allows it', () => {
  const close = parse('HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n');
  assert.ok(close.parser.done);
  assert.equal(close.parser.reusable, false);
  const old = parse('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n');
  assert.equal(old.parser.reusable, false);
  const oldKeep = parse('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n');
  assert.equal(oldKeep.parser.reusable, true);
});

test('a repeated field is joined with ", "; space around values is trimmed', () => {
  const s = parse('HTTP/1.1 200 OK\r\nx-a:  one \r\nX-A: two\r\nContent-Length: 0\r\n\r\n');
  assert.equal(s.heads[0]!.headers['x-a'], 'one, two');
});

test('bytes after a complete answer make the connection unusable', () => {
  const s = parse('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n');
  assert.equal(s.ends, 1);
  assert.equal(s.parser.reusable, false);
});

test('the connection ending early: before the head is a hang-up, during the body a cut-short answer', () => {
  for (const wire of ['', 'HTTP/1.1 200 OK\r\nContent-Le']) {
    const s = parse(wire);
    assert.throws(() => s.parser.eof(), { code: 'ECONNRESET', message: 'socket hang up' });
  }
  for (const wire of [
    'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel',
  ]) {
    const s = parse(wire);
    assert.throws(() => s.parser.eof(), { code: 'ECONNRESET', message: 'response cut short' });
  }
});

test('what is not HTTP/1.x is refused: status line, header line, lengths, chunk sizes, an endless head', () => {
  const bad = [
    'SSH-2.0-OpenSSH_9.2\r\n\r\n',
    'HTTP/2 200\r\n\r\n',
    'HTTP/1.1 200 OK\r\nno colon here\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n',
  ];
  for (const wire of bad) {
    assert.throws(() => parse(wire), { name: 'HttpResponseError' }, JSON.stringify(wire));
  }
  const endless = `HTTP/1.1 200 OK\r\n${'x-filler: 0123456789\r\n'.repeat(4000)}`;
  assert.throws(() => parse(endless, [1000, 1000, 1000]), { code: 'HPE_HEADER_OVERFLOW' });
});
