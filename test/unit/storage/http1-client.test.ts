/**
 * The S3 request path's HTTP/1.1 client against servers on loopback: node:http servers
 * where a well-behaved peer will do, raw TCP ones where the test needs a peer that
 * misbehaves on purpose (answers early, closes idle connections, resets mid-answer), and
 * node:https with a self-signed certificate for TLS. Connection counts are the servers'.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { Http1Pool, type Http1Request } from '../../../src/storage/http1-client.js';
import { repoRoot } from '../../support/fixtures.js';

async function listen(server: Server | HttpServer): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as { port: number }).port;
}

/** A node:http server that hashes each body and answers with the hash; counts connections. */
async function hashingServer(delayMs = 0) {
  let connections = 0;
  let open = 0;
  let mostOpen = 0;
  const server = createHttpServer({ keepAliveTimeout: 10_000 }, (req, res) => {
    const h = createHash('sha256');
    req.on('data', (c: Buffer) => h.update(c));
    req.on('end', () => {
      setTimeout(() => res.end(h.digest('hex')), delayMs);
    });
  });
  server.on('connection', (s: Socket) => {
    connections++;
    mostOpen = Math.max(mostOpen, ++open);
    s.on('close', () => open--);
  });
  const port = await listen(server);
  return {
    port,
    stats: () => ({ connections, mostOpen }),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const pool = (port: number, maxSockets = 4, host = '127.0.0.1') =>
  new Http1Pool({ tls: false, host, port, maxSockets, connectTimeoutMs: 2000 });

const put = (port: number, body: Buffer, extra: Partial<Http1Request> = {}): Http1Request => ({
  method: 'PUT',
  path: '/bucket/key',
  headers: { host: `127.0.0.1:${port}`, 'content-length': body.length },
  body: [body],
  idleTimeoutMs: 5000,
  ...extra,
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('requests one after another share one connection; every body arrives whole', async () => {
  const srv = await hashingServer();
  const p = pool(srv.port);
  try {
    for (let i = 0; i < 20; i++) {
      const body = randomBytes(i % 2 === 0 ? 1024 * 1024 : 100);
      const res = await p.request(put(srv.port, body));
      assert.equal(res.status, 200);
      assert.equal(res.body.toString(), sha(body));
    }
    assert.equal(srv.stats().connections, 1);
  } finally {
    p.destroy();
    await srv.close();
  }
});

test('no more than maxSockets connections are open at once; requests beyond wait their turn', async () => {
  const srv = await hashingServer(30);
  const p = pool(srv.port, 3);
  try {
    const bodies = Array.from({ length: 12 }, () => randomBytes(5000));
    const answers = await Promise.all(bodies.map((b) => p.request(put(srv.port, b))));
    assert.deepEqual(
      answers.map((a) => a.body.toString()),
      bodies.map(sha),
    );
    assert.equal(srv.stats().mostOpen, 3);
    assert.equal(srv.stats().connections, 3);
  } finally {
    p.destroy();
    await srv.close();
  }
});

/** A raw TCP server; `onRequest` gets each request's head as text and the socket. */
async function rawServer(onRequest: (head: string, socket: Socket, n: number) => void) {
  let connections = 0;
  let n = 0;
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      // Bodies are not parsed: each test's requests are head-only or answered early.
      const end = buf.indexOf('\r\n\r\n');
      if (end >= 0) {
        const head = buf.slice(0, end);
        buf = '';
        onRequest(head, socket, ++n);
      }
    });
  });
  const port = await listen(server);
  return {
    port,
    connections: () => connections,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Run `body` against a raw server and a pool of `maxSockets` to it; both closed after. */
async function withRawServer(
  onRequest: (head: string, socket: Socket, n: number) => void,
  body: (srv: Awaited<ReturnType<typeof rawServer>>, p: Http1Pool) => Promise<void>,
  maxSockets = 4,
) {
  const srv = await rawServer(onRequest);
  const p = pool(srv.port, maxSockets);
  try {
    await body(srv, p);
  } finally {
    p.destroy();
    await srv.close();
  }
}

/** Answers every request with `payload`, its body `delayMs` after its head. */
const answering =
  (payload: Buffer, delayMs = 0) =>
  (_head: string, socket: Socket) => {
    socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${payload.length}\r\n\r\n`);
    if (delayMs === 0) socket.write(payload);
    else setTimeout(() => socket.write(payload), delayMs);
  };

const get = (port: number, extra: Partial<Http1Request> = {}): Http1Request => ({
  method: 'GET',
  path: '/bucket/key',
  headers: { host: `127.0.0.1:${port}` },
  body: [],
  idleTimeoutMs: 5000,
  ...extra,
});

test('a connection the server closes while idle is dropped; the next request opens a new one', async () => {
  await withRawServer(
    (_head, socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      setTimeout(() => socket.end(), 10);
    },
    async (srv, p) => {
      assert.equal((await p.request(get(srv.port))).body.toString(), 'ok');
      await new Promise((r) => setTimeout(r, 100));
      assert.equal((await p.request(get(srv.port))).body.toString(), 'ok');
      assert.equal(srv.connections(), 2);
    },
  );
});

test('after an answer that says Connection: close, or with bytes after it in the same read, the next request opens a new connection', async () => {
  const answers = [
    'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok',
    'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n',
  ];
  for (const answer of answers) {
    await withRawServer(
      (_head, socket) => socket.write(answer),
      async (srv, p) => {
        for (let i = 0; i < 3; i++) {
          assert.equal((await p.request(get(srv.port))).body.toString(), 'ok', answer);
        }
        assert.equal(srv.connections(), 3, answer);
      },
    );
  }
});

test('an answer sent before the body was read is the result, and that connection is not reused', async () => {
  await withRawServer(
    (head, socket, n) => {
      if (head.startsWith('PUT')) {
        socket.write('HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\n\r\ndenied');
      } else {
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n${n}`);
      }
    },
    async (srv, p) => {
      const body = randomBytes(16 * 1024 * 1024);
      const res = await p.request(put(srv.port, body));
      assert.equal(res.status, 403);
      assert.equal(res.body.toString(), 'denied');
      assert.equal((await p.request(get(srv.port))).status, 200);
      assert.equal(srv.connections(), 2);
    },
  );
});

test('a connection reset during the answer is ECONNRESET; silence is a TimeoutError', async () => {
  await withRawServer(
    (head, socket) => {
      if (head.includes('/reset')) {
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial');
        setTimeout(() => socket.resetAndDestroy(), 10);
      }
      // '/silent' is never answered
    },
    async (srv, p) => {
      await assert.rejects(p.request(get(srv.port, { path: '/reset' })), { code: 'ECONNRESET' });
      await assert.rejects(p.request(get(srv.port, { path: '/silent', idleTimeoutMs: 100 })), {
        name: 'TimeoutError',
      });
    },
  );
});

test('a streamed answer arrives whole to a slow reader, then its connection is reused', async () => {
  const payload = randomBytes(8 * 1024 * 1024);
  await withRawServer(answering(payload), async (srv, p) => {
    const res = await p.request(get(srv.port, { stream: true }));
    assert.equal(res.status, 200);
    const h = createHash('sha256');
    for await (const c of res.stream!) {
      h.update(c as Buffer);
      // Slower than the socket: the stream's buffer fills and the connection is paused.
      await new Promise((r) => setTimeout(r, 2));
    }
    assert.equal(h.digest('hex'), sha(payload));
    const again = await p.request(get(srv.port, { stream: true }));
    let n = 0;
    for await (const c of again.stream!) n += (c as Buffer).length;
    assert.equal(n, payload.length);
    assert.equal(srv.connections(), 1);
  });
});

test('a connection paused by a streamed answer whose last bytes filled the reader is usable again', async () => {
  // One read of 64 KiB fills a stream's buffer (its high-water mark): the client pauses the
  // socket, and the answer is complete in that same read.
  const payload = randomBytes(64 * 1024);
  await withRawServer(answering(payload, 20), async (srv, p) => {
    for (let i = 0; i < 3; i++) {
      const res = await p.request(get(srv.port, { stream: true, idleTimeoutMs: 1000 }));
      await new Promise((r) => setTimeout(r, 50));
      let n = 0;
      for await (const c of res.stream!) n += (c as Buffer).length;
      assert.equal(n, payload.length);
    }
    assert.equal(srv.connections(), 1);
  });
});

test('a streamed answer dropped half-read closes its connection; the pool goes on', async () => {
  const payload = randomBytes(4 * 1024 * 1024);
  await withRawServer(answering(payload), async (srv, p) => {
    const res = await p.request(get(srv.port, { stream: true }));
    for await (const _ of res.stream!) break;
    const again = await p.request(get(srv.port));
    assert.equal(again.body.length, payload.length);
    assert.equal(srv.connections(), 2);
  });
});

test('an abort stops a request in flight and one waiting for a connection, with AbortError', async () => {
  await withRawServer(
    () => {
      // never answers
    },
    async (srv, p) => {
      const ac = new AbortController();
      const inFlight = p.request(get(srv.port, { signal: ac.signal }));
      const waiting = p.request(get(srv.port, { signal: ac.signal }));
      setTimeout(() => ac.abort(), 30);
      await assert.rejects(inFlight, { name: 'AbortError' });
      await assert.rejects(waiting, { name: 'AbortError' });
      await assert.rejects(p.request(get(srv.port, { signal: ac.signal })), { name: 'AbortError' });
      assert.equal(srv.connections(), 1);
    },
    1,
  );
});

test('a request whose connection is still being made ends at once when aborted, or when its pool closes', async () => {
  // A TCP peer that never answers the TLS handshake: the connection is never ready.
  const srv = await rawServer(() => {});
  const stalled = () =>
    new Http1Pool({
      tls: true,
      host: '127.0.0.1',
      port: srv.port,
      maxSockets: 1,
      connectTimeoutMs: 5000,
    });
  const aborted = stalled();
  const closed = stalled();
  /** Fails if the request has not ended 2 s after it was told to. */
  const within2s = (request: Promise<unknown>) =>
    Promise.race([
      request,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('still pending after 2 s')), 2000).unref(),
      ),
    ]);
  try {
    const ac = new AbortController();
    const a = aborted.request(get(srv.port, { signal: ac.signal }));
    const c = closed.request(get(srv.port));
    setTimeout(() => {
      ac.abort();
      closed.destroy();
    }, 30);
    await assert.rejects(within2s(a), { name: 'AbortError' });
    await assert.rejects(within2s(c), { code: 'ECONNRESET' });
  } finally {
    aborted.destroy();
    closed.destroy();
    await srv.close();
  }
});

test('a header value with a line break is refused before anything is sent', async () => {
  await withRawServer(
    () => {},
    async (srv, p) => {
      await assert.rejects(
        p.request(get(srv.port, { headers: { host: 'h', 'x-evil': 'a\r\nx-injected: 1' } })),
        { code: 'ERR_INVALID_CHAR' },
      );
      assert.equal(srv.connections(), 0);
    },
  );
});

test('a refused connection is ECONNREFUSED', async () => {
  const srv = await rawServer(() => {});
  const port = srv.port;
  await srv.close();
  const p = pool(port);
  await assert.rejects(p.request(get(port)), { code: 'ECONNREFUSED' });
  p.destroy();
});

const fixtures = join(repoRoot, 'test', 'fixtures', 'tls');
/** The client as built, for child processes. */
const clientModule = join(repoRoot, 'dist', 'src', 'storage', 'http1-client.js');

test('TLS: a self-signed certificate is refused; trusted through NODE_EXTRA_CA_CERTS it is used', async () => {
  const cert = readFileSync(join(fixtures, 'localhost.crt'));
  const key = readFileSync(join(fixtures, 'localhost.key'));
  const server = createHttpsServer({ cert, key }, (_req, res) => res.end('over tls'));
  const port = await listen(server);
  const p = new Http1Pool({
    tls: true,
    host: 'localhost',
    port,
    maxSockets: 1,
    connectTimeoutMs: 2000,
  });
  try {
    await assert.rejects(p.request(get(port)), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
    // The CA list is read once per process: trust the certificate in a child.
    const script = `
      import { Http1Pool } from ${JSON.stringify(clientModule)};
      const p = new Http1Pool({ tls: true, host: 'localhost', port: ${port}, maxSockets: 1, connectTimeoutMs: 2000 });
      const r = await p.request({ method: 'GET', path: '/', headers: { host: 'localhost' }, body: [], idleTimeoutMs: 5000 });
      process.stdout.write(r.status + ' ' + r.body.toString());
      p.destroy();`;
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        ['--input-type=module', '-e', script],
        { env: { ...process.env, NODE_EXTRA_CA_CERTS: join(fixtures, 'localhost.crt') } },
        (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout)),
      ),
    );
    assert.equal(out, '200 over tls');
  } finally {
    p.destroy();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('idle connections do not keep the process alive', async () => {
  const srv = await hashingServer();
  try {
    const script = `
      import { Http1Pool } from ${JSON.stringify(clientModule)};
      const p = new Http1Pool({ tls: false, host: '127.0.0.1', port: ${srv.port}, maxSockets: 2, connectTimeoutMs: 2000 });
      const r = await p.request({ method: 'GET', path: '/', headers: { host: 'x' }, body: [], idleTimeoutMs: 60000 });
      process.stdout.write(String(r.status));`;
    const t = performance.now();
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        ['--input-type=module', '-e', script],
        { timeout: 20_000 },
        (err, stdout, stderr) => (err ? reject(new Error(stderr || String(err))) : resolve(stdout)),
      ),
    );
    assert.equal(out, '200');
    // The server keeps the connection for 10 s; the child left long before.
    assert.ok(performance.now() - t < 8000, `child exited after ${performance.now() - t} ms`);
    assert.equal(srv.stats().connections, 1);
  } finally {
    await srv.close();
  }
});
