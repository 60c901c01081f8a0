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

function canConnect(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Start a nix-daemon unless one already answers on the default socket. */
export async function startNixDaemon(): Promise<{ pid?: number; stop(): Promise<void> }> {
  if (await canConnect(defaultDaemonSocket)) return { stop: async () => {} };
  const child = spawn('nix-daemon', [], { stdio: 'ignore', detached: true });
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (e) =>
      reject(new Error(`cannot start nix-daemon (is nix-bin installed?): ${e.message}`)),
    );
  });
  await spawned;
  for (let i = 0; i < 100 && !(await canConnect(defaultDaemonSocket)); i++) await sleep(50);
  if (!(await canConnect(defaultDaemonSocket))) {
    child.kill('SIGKILL');
    throw new Error(`nix-daemon started but ${defaultDaemonSocket} does not accept connections`);
  }
  const pid = child.pid;
  return {
    pid,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(5000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
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
    env: { ...rgw.env, LOFT_TEST_FIXTURES: '1' },
    async stop() {
      await Promise.all([rgw.stop(), daemon.stop()]);
    },
  };
}
