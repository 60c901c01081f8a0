/**
 * Support for service-mode tests: a throwaway chroot store served by its own nix-daemon
 * (so the service watches a small store of the test's own paths, not this machine's
 * shared /nix/store), a loft.toml for it, and Loft run as a child process
 * (`node bin/loft.js`) with JSON logs the test follows line by line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { repoRoot, sleep, spawnNixDaemon } from '../../support/fixtures.js';
import { freshStoreRoot, runNix } from '../../support/nix.js';
import { s3TestEnv } from '../../support/s3.js';
import type { TestCache } from '../../support/cache.js';

export const loftBin = join(repoRoot, 'bin', 'loft.js');

export interface ChrootStore {
  root: string;
  /** `<root>/nix/store`: where the files are; paths are still named /nix/store/... */
  realStoreDir: string;
  socket: string;
  /** `nix copy` paths (with their closures) from the system store into this one. */
  add(paths: string[]): Promise<void>;
  stop(): Promise<void>;
}

/** A chroot store with its own nix-daemon (stopped by PID). */
export async function startChrootStore(): Promise<ChrootStore> {
  const root = freshStoreRoot();
  const stateDir = join(root, 'nix', 'var', 'nix');
  const socket = join(stateDir, 'daemon-socket', 'socket');
  const daemon = await spawnNixDaemon(['--store', root], socket, {
    env: { ...process.env, NIX_STATE_DIR: stateDir },
  }).catch((e: unknown) => {
    rmSync(root, { recursive: true, force: true });
    throw e;
  });
  const stop = async () => {
    await daemon.stop();
    rmSync(root, { recursive: true, force: true });
  };
  return {
    root,
    realStoreDir: join(root, 'nix', 'store'),
    socket,
    add: async (paths) => {
      await runNix('nix', ['copy', '--no-check-sigs', '--to', root, ...paths]);
    },
    stop,
  };
}

export interface ServiceSetup {
  dir: string;
  toml: string;
  dbPath: string;
  inboxDir: string;
  /** Environment for Loft: S3 credentials as the AWS SDK reads them. */
  env: Record<string, string>;
}

/**
 * A working directory with loft.toml for `cache` and `store`. `loft` and `s3Keys` override
 * or add `[loft]` and `[s3]` keys, as TOML values (`{ upload_threads: '1' }`).
 */
export function setupService(
  cache: TestCache,
  store: ChrootStore | undefined,
  loft: Record<string, string> = {},
  s3Keys: Record<string, string> = {},
): ServiceSetup {
  const s3 = s3TestEnv();
  const dir = mkdtempSync(join(tmpdir(), 'loft-svc-'));
  const keyFile = join(dir, 'signing.key');
  writeFileSync(keyFile, cache.key.exportKeyFile(), { mode: 0o600 });
  const toml = join(dir, 'loft.toml');
  const keys: Record<string, string> = {
    local_cache_path: JSON.stringify(join(dir, 'state', 'cache.db')),
    signing_key_path: JSON.stringify(keyFile),
    skip_signed_by_keys: '[]',
    upload_threads: '4',
    ...(store
      ? {
          daemon_socket: JSON.stringify(store.socket),
          real_store_dir: JSON.stringify(store.realStoreDir),
        }
      : {}),
    ...loft,
  };
  const s3Table: Record<string, string> = {
    bucket: JSON.stringify(cache.bucket),
    endpoint: JSON.stringify(s3.endpoint),
    region: JSON.stringify(s3.region),
    ...s3Keys,
  };
  const lines = [
    '[s3]',
    ...Object.entries(s3Table).map(([k, v]) => `${k} = ${v}`),
    '[loft]',
    ...Object.entries(keys).map(([k, v]) => `${k} = ${v}`),
  ];
  writeFileSync(toml, `${lines.join('\n')}\n`);
  return {
    dir,
    toml,
    dbPath: join(dir, 'state', 'cache.db'),
    inboxDir: join(dir, 'state', 'inbox'),
    env: {
      ...(process.env as Record<string, string>),
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      NO_COLOR: '1',
    },
  };
}

export interface LogLine {
  time: string;
  level: string;
  msg: string;
  event?: string;
  path?: string;
  [k: string]: unknown;
}

/** A running `loft` service with JSON logs parsed as they arrive. */
export class ServiceProcess {
  readonly lines: LogLine[] = [];
  readonly raw: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;
  private waiters: (() => void)[] = [];

  constructor(setup: ServiceSetup, args: string[] = [], opts: { debug?: boolean } = {}) {
    this.child = spawn(
      process.execPath,
      [
        loftBin,
        '-c',
        setup.toml,
        '--log-format',
        'json',
        ...(opts.debug === false ? [] : ['--debug']),
        ...args,
      ],
      { env: setup.env, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let buf = '';
    this.child.stderr!.on('data', (c: Buffer) => {
      buf += c.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        this.raw.push(line);
        try {
          this.lines.push(JSON.parse(line) as LogLine);
        } catch {
          this.lines.push({ time: '', level: 'raw', msg: line });
        }
        for (const w of this.waiters.splice(0)) w();
      }
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        for (const w of this.waiters.splice(0)) w();
        resolve({ code, signal });
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The first log line (from the start) matching `pred`, waiting up to `timeoutMs`. */
  async waitFor(pred: (l: LogLine) => boolean, what: string, timeoutMs = 60_000): Promise<LogLine> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.find(pred);
      if (hit) return hit;
      if (!this.running) {
        throw new Error(`loft exited before ${what}; its log:\n${this.raw.join('\n')}`);
      }
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; log:\n${this.raw.join('\n')}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 1000));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  waitEvent(event: string, extra: (l: LogLine) => boolean = () => true, timeoutMs?: number) {
    return this.waitFor((l) => l.event === event && extra(l), `event ${event}`, timeoutMs);
  }

  events(event: string): LogLine[] {
    return this.lines.filter((l) => l.event === event);
  }

  uploaded(): string[] {
    return this.events('uploaded').map((l) => l.path!);
  }

  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig);
  }

  /** SIGTERM and wait for the exit. */
  async stop(timeoutMs = 60_000): Promise<number | null> {
    if (this.running) this.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      this.exited,
      new Promise<undefined>((res) => (timer = setTimeout(() => res(undefined), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (!r) {
      this.child.kill('SIGKILL');
      throw new Error(`loft did not stop within ${timeoutMs} ms; log:\n${this.raw.join('\n')}`);
    }
    return r.code;
  }

  async kill9(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

export interface LoftRun {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Run `loft` once (a one-shot action) with `stdin` as its input, and collect its output. */
export function runLoft(
  args: string[],
  env: Record<string, string | undefined>,
  stdin = '',
): Promise<LoftRun> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [loftBin, ...args], { env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: performance.now() - t0 }));
    child.stdin.end(stdin);
  });
}

export const hashPartOf = (p: string) => p.slice('/nix/store/'.length, '/nix/store/'.length + 32);

/** Is the path's narinfo in the bucket? */
export async function hasNarInfo(client: S3Client, bucket: string, path: string): Promise<boolean> {
  try {
    await client.send(
      new HeadObjectCommand({ Bucket: bucket, Key: `${hashPartOf(path)}.narinfo` }),
    );
    return true;
  } catch (e) {
    if ((e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) {
      return false;
    }
    throw e;
  }
}

/** Poll until `pred` holds (every `everyMs`), or throw after `timeoutMs`. */
export async function until(
  pred: () => Promise<boolean> | boolean,
  what: string,
  timeoutMs = 60_000,
  everyMs = 100,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await pred())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}
