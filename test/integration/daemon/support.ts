/**
 * Helpers for live daemon tests: a Unix-socket proxy in front of the real daemon socket
 * that a test can cut (to break connections mid-operation), and the `nix-daemon --stdio`
 * children of this process (to kill them).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const DAEMON_SOCKET = '/nix/var/nix/daemon-socket/socket';

export interface Proxy {
  path: string;
  /** Connections accepted so far. */
  accepted(): number;
  /** Bytes sent to clients so far, over all connections. */
  bytesToClients(): number;
  /** Cut every open connection (both directions). */
  cutAll(): void;
  close(): Promise<void>;
}

export async function startProxy(target = DAEMON_SOCKET): Promise<Proxy> {
  const dir = mkdtempSync(join(tmpdir(), 'loft-proxy-'));
  const path = join(dir, 'socket');
  const open = new Set<Socket>();
  let accepted = 0;
  let toClients = 0;
  const server: Server = createServer((client) => {
    accepted++;
    const upstream = connect(target);
    open.add(client);
    open.add(upstream);
    upstream.on('data', (c: Buffer) => (toClients += c.length));
    client.pipe(upstream);
    upstream.pipe(client);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    path,
    accepted: () => accepted,
    bytesToClients: () => toClients,
    cutAll() {
      for (const s of open) s.destroy();
      open.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** PIDs of `nix-daemon` processes whose parent is this process (our stdio transports). */
export function ourStdioDaemons(): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // pid (comm) state ppid ...
      const m = /^\d+ \((.*)\) \S+ (\d+)/.exec(stat);
      if (m && m[1] === 'nix-daemon' && Number(m[2]) === process.pid) pids.push(Number(name));
    } catch {
      // the process went away
    }
  }
  return pids;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
