/**
 * The `/metrics` listener: GET (or HEAD) `/metrics` answers the registry's text; anything
 * else is 404 or 405. It binds where `metrics_listen` says, which is loopback unless an
 * address was written out.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { LoftError } from '../util/errors.js';
import { CONTENT_TYPE, type Registry } from './registry.js';

export interface MetricsServer {
  /** `http://host:port/metrics`, with the port actually bound. */
  url: string;
  close(): Promise<void>;
}

export async function startMetricsServer(
  listen: { host: string; port: number },
  registry: Registry,
): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; try /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    let body: string;
    try {
      body = registry.render();
    } catch (e) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(e as Error).message}\n`);
      return;
    }
    res.writeHead(200, {
      'content-type': CONTENT_TYPE,
      'content-length': Buffer.byteLength(body),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new LoftError(
          'METRICS_LISTEN_FAILED',
          'environment',
          `cannot listen for metrics on ${listen.host}:${listen.port}: ${e.code ?? e.message}`,
          { hint: 'choose another metrics_listen address or port, or stop what uses it' },
        ),
      ),
    );
    server.listen(listen.port, listen.host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return {
    url: `http://${host}:${a.port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
