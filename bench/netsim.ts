/**
 * A network link simulator for benchmarks: a TCP proxy on loopback in front of a server
 * (Ceph RGW) that delays every byte by half the round trip in each direction and paces
 * each direction to a bandwidth cap.
 *
 * Per connection and direction there is one FIFO of chunks and one drain timer, so bytes
 * never overtake each other (a timer per chunk would reorder chunks that fall due in the
 * same millisecond and corrupt bodies). The bandwidth is the link's, shared by every
 * connection in that direction (one bottleneck queue): a chunk arrives RTT/2 after the
 * link has finished sending it, behind every byte sent before it on any connection. A
 * half-close travels through the queue like data, so it arrives after the last byte. The
 * TCP handshake itself is not delayed (the proxy accepts at once), so a new connection
 * costs no extra round trip here, as it would on a real link.
 *
 *   node dist/bench/netsim.js --target 127.0.0.1:7480 --rtt-ms 40 --mbit 200 [--port 0]
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

export interface LinkShape {
  /** Round-trip time added, in ms (half on each direction). */
  rttMs: number;
  /** Bandwidth cap per direction in Mbit/s; 0 or Infinity for none. */
  mbit: number;
}

export interface NetSim {
  port: number;
  /**
   * Bytes that went through, per direction; `rounds`: bursts of client data that began
   * after at least RTT/2 without any (requests sent together count once, a request sent
   * after the answer to another counts again), i.e. the client's sequential round trips.
   */
  stats(): { up: number; down: number; connections: number; rounds: number };
  close(): Promise<void>;
}

interface Item {
  due: number;
  /** Data, or `null` for the half-close. */
  chunk: Buffer | null;
}

/** One direction of the link: when it has finished sending what was queued (ms). */
interface Link {
  free: number;
}

/** One direction of one connection: FIFO, one timer; the bandwidth clock is the link's. */
class Pipe {
  readonly #queue: Item[] = [];
  #timer: NodeJS.Timeout | undefined;
  bytes = 0;

  constructor(
    private readonly to: Socket,
    private readonly shape: LinkShape,
    private readonly link: Link,
    private readonly onBytes: (n: number) => void,
  ) {}

  push(chunk: Buffer | null): void {
    const now = performance.now();
    let due = now + this.shape.rttMs / 2;
    if (chunk && this.shape.mbit > 0 && Number.isFinite(this.shape.mbit)) {
      // Serialisation time on the capped link, queued behind earlier chunks.
      const start = Math.max(now, this.link.free);
      this.link.free = start + (chunk.length * 8) / (this.shape.mbit * 1000);
      due = Math.max(due, this.link.free + this.shape.rttMs / 2);
    }
    const last = this.#queue[this.#queue.length - 1];
    if (last && last.due > due) due = last.due; // never overtake
    this.#queue.push({ due, chunk });
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer || this.#queue.length === 0) return;
    const wait = Math.max(0, this.#queue[0]!.due - performance.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#drain();
    }, wait);
  }

  #drain(): void {
    const now = performance.now();
    while (this.#queue.length > 0 && this.#queue[0]!.due <= now + 0.5) {
      const { chunk } = this.#queue.shift()!;
      if (this.to.destroyed) continue;
      if (chunk === null) this.to.end();
      else {
        this.bytes += chunk.length;
        this.onBytes(chunk.length);
        this.to.write(chunk);
      }
    }
    this.#schedule();
  }

  cancel(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#queue.length = 0;
  }
}

export async function startNetSim(
  target: { host: string; port: number },
  shape: LinkShape,
  listenPort = 0,
): Promise<NetSim> {
  let up = 0;
  let down = 0;
  let connections = 0;
  let rounds = 0;
  let lastClientData = -Infinity;
  const sockets = new Set<Socket>();
  const upLink: Link = { free: 0 };
  const downLink: Link = { free: 0 };
  const server: Server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    connections++;
    const upstream = connect({ ...target, allowHalfOpen: true, noDelay: true });
    sockets.add(client);
    sockets.add(upstream);
    const toServer = new Pipe(upstream, shape, upLink, (n) => (up += n));
    const toClient = new Pipe(client, shape, downLink, (n) => (down += n));
    client.on('data', (c: Buffer) => {
      const now = performance.now();
      if (now - lastClientData >= Math.max(1, shape.rttMs / 2)) rounds++;
      lastClientData = now;
      toServer.push(c);
    });
    upstream.on('data', (c: Buffer) => toClient.push(c));
    client.on('end', () => toServer.push(null));
    upstream.on('end', () => toClient.push(null));
    const kill = () => {
      toServer.cancel();
      toClient.cancel();
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', kill);
    upstream.on('error', kill);
    client.on('close', () => {
      if (upstream.writableEnded || upstream.destroyed) sockets.delete(client);
    });
    upstream.on('close', () => {
      if (client.writableEnded || client.destroyed) sockets.delete(upstream);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenPort, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    port,
    stats: () => ({ up, down, connections, rounds }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * The round trip the simulator actually gives: `n` small echoes through a fresh simulator
 * of this shape to an echo server on loopback, one after another. Mean and median, in ms.
 */
export async function measureRoundTrip(
  shape: LinkShape,
  n = 50,
): Promise<{ mean: number; median: number }> {
  const echo = createServer({ noDelay: true }, (s) => s.on('data', (d: Buffer) => s.write(d)));
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', () => resolve()));
  const sim = await startNetSim(
    { host: '127.0.0.1', port: (echo.address() as { port: number }).port },
    shape,
  );
  const c = connect({ host: '127.0.0.1', port: sim.port, noDelay: true });
  try {
    await new Promise<void>((resolve, reject) => {
      c.once('connect', resolve);
      c.once('error', reject);
    });
    const times: number[] = [];
    const ping = Buffer.alloc(100, 1);
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      await new Promise<void>((resolve) => {
        let got = 0;
        const on = (d: Buffer) => {
          got += d.length;
          if (got < ping.length) return;
          c.off('data', on);
          resolve();
        };
        c.on('data', on);
        c.write(ping);
      });
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    return {
      mean: times.reduce((a, b) => a + b, 0) / n,
      median: times[Math.floor(n / 2)]!,
    };
  } finally {
    c.destroy();
    await sim.close();
    await new Promise<void>((resolve) => echo.close(() => resolve()));
  }
}

/** Replace the port of an http(s) URL with the simulator's. */
export function throughSim(endpoint: string, sim: NetSim): string {
  const u = new URL(endpoint);
  u.hostname = '127.0.0.1';
  u.port = String(sim.port);
  return u.origin;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({
    options: {
      target: { type: 'string' },
      'rtt-ms': { type: 'string', default: '40' },
      mbit: { type: 'string', default: '200' },
      port: { type: 'string', default: '0' },
    },
  });
  if (!values.target || !/^[^:]+:\d+$/.test(values.target)) {
    console.error('usage: node dist/bench/netsim.js --target HOST:PORT [--rtt-ms 40] [--mbit 200]');
    process.exit(2);
  }
  const [host, port] = values.target.split(':') as [string, string];
  const sim = await startNetSim(
    { host, port: Number(port) },
    { rttMs: Number(values['rtt-ms']), mbit: Number(values.mbit) },
    Number(values.port),
  );
  console.log(`listening on 127.0.0.1:${sim.port} -> ${values.target}`);
}
