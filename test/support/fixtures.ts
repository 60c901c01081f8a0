/**
 * The real servers integration tests and benchmarks run against: a nix-daemon on the
 * default socket (started only if none answers) and a single-node Ceph RGW on free
 * loopback ports (always our own, in a throwaway directory). Both are stopped by PID.
 */
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const rgwScript = join(repoRoot, 'scripts', 'rgw.sh');
export const defaultDaemonSocket = '/nix/var/nix/daemon-socket/socket';

export interface Fixtures {
  env: Record<string, string>;
  stop(): Promise<void>;
}

export function canConnect(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface SpawnedDaemon {
  pid: number | undefined;
  /** SIGTERM, then SIGKILL after 5 s; nothing if it has already exited. */
  stop(): Promise<void>;
}

/**
 * Spawn `nix-daemon args` and wait until `socket` accepts connections (at most 10 s).
 * A daemon that never answers is killed, and the error carries what it printed.
 */
export async function spawnNixDaemon(
  args: string[],
  socket: string,
  opts: { env?: NodeJS.ProcessEnv; detached?: boolean } = {},
): Promise<SpawnedDaemon> {
  const child = spawn('nix-daemon', args, {
    env: opts.env ?? process.env,
    detached: opts.detached ?? false,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let printed = '';
  child.stderr!.on('data', (c: Buffer) => (printed += c.toString()));
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (e) =>
      reject(new Error(`cannot start nix-daemon (is nix-bin installed?): ${e.message}`)),
    );
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 5000)))]);
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  for (let i = 0; i < 200 && !(await canConnect(socket)); i++) await sleep(50);
  if (!(await canConnect(socket))) {
    await stop();
    throw new Error(`nix-daemon ${args.join(' ')} did not answer on ${socket}: ${printed}`);
  }
  // Up: its stderr is no longer needed, only drained so it never blocks on a full pipe.
  child.stderr!.removeAllListeners('data').resume();
  return { pid: child.pid, stop };
}

/** Start a nix-daemon unless one already answers on the default socket. */
export async function startNixDaemon(): Promise<SpawnedDaemon> {
  if (await canConnect(defaultDaemonSocket)) return { pid: undefined, stop: async () => {} };
  // Its own process group: a Ctrl-C of the test run reaches the harness, which stops it.
  return spawnNixDaemon([], defaultDaemonSocket, { detached: true });
}

export interface Rgw {
  dir: string;
  env: Record<string, string>;
  stop(): Promise<void>;
}

/** Start a throwaway Ceph RGW. `OSD_STORE=bluestore` in `extraEnv` for data beyond RAM. */
export async function startRgw(extraEnv: Record<string, string> = {}): Promise<Rgw> {
  const parent = mkdtempSync(join(tmpdir(), 'loft-rgw-'));
  const dir = join(parent, 'rgw');
  const stop = async () => {
    await run(rgwScript, ['down', dir]).catch(() => {});
    rmSync(parent, { recursive: true, force: true });
  };
  try {
    await run(rgwScript, ['up', dir], { env: { ...process.env, ...extraEnv } });
  } catch (e) {
    await stop();
    const err = e as { stderr?: string; message: string };
    throw new Error(`could not start Ceph RGW: ${err.stderr || err.message}`);
  }
  const env: Record<string, string> = {};
  for (const line of readFileSync(join(dir, 'env'), 'utf8').split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) env[line.slice(0, i)] = line.slice(i + 1);
  }
  return { dir, env, stop };
}

export async function startFixtures(): Promise<Fixtures> {
  const daemon = await startNixDaemon();
  let rgw: Rgw;
  try {
    rgw = await startRgw();
  } catch (e) {
    await daemon.stop();
    throw e;
  }
  return {
    env: rgw.env,
    async stop() {
      await Promise.all([rgw.stop(), daemon.stop()]);
    },
  };
}
