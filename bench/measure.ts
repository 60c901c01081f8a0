/** What the benchmarks measure with: medians, and a process's memory and CPU from /proc. */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

/** The load averages, as each run prints them (the machine may be shared). */
export function loadLine(): string {
  return loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Resident and peak resident memory (VmRSS, VmHWM) in MiB; undefined once it has exited. */
export function memoryMiB(pid: number): { rss: number; hwm: number } | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

/**
 * Follow a child's peak RSS until `stop()`, which returns it in MiB. VmHWM is the kernel's
 * own high-water mark, so polling only has to catch it before the process exits.
 */
export function watchPeakRss(pid: number, everyMs = 20): { stop(): number } {
  let peak = 0;
  const sample = () => (peak = Math.max(peak, memoryMiB(pid)?.hwm ?? 0));
  const timer = setInterval(sample, everyMs);
  return {
    stop() {
      clearInterval(timer);
      return peak;
    },
  };
}

/** A process's or thread's name, CPU and page faults, from its `stat` file. */
export interface TaskStat {
  comm: string;
  /** utime + stime in seconds (ticks of 1/100 s). */
  cpu: number;
  /** Minor page faults: first touches of memory, among others. */
  minflt: number;
}

function readStat(statFile: string): TaskStat {
  const stat = readFileSync(statFile, 'utf8');
  const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return {
    comm,
    cpu: (Number(fields[11]) + Number(fields[12])) / 100,
    minflt: Number(fields[7]),
  };
}

/** utime + stime of a process, in seconds. */
export function cpuSeconds(pid: number): number {
  return readStat(`/proc/${pid}/stat`).cpu;
}

/**
 * What a thread of a Loft process is, by the names Node and libuv give threads: `main`
 * (the event loop, requests, signing, the index), `workers` (Loft's packers and zstd
 * workers), `pool` (libuv's thread pool: file reads, and zlib's work), `v8` (V8's helpers:
 * concurrent GC and compilation), `other`.
 */
export type ThreadKind = 'main' | 'workers' | 'pool' | 'v8' | 'other';

export function threadKind(pid: number, tid: number, comm: string): ThreadKind {
  if (tid === pid) return 'main';
  if (comm === 'WorkerThread') return 'workers';
  if (comm === 'libuv-worker') return 'pool';
  if (comm.startsWith('V8')) return 'v8';
  return 'other';
}

/** CPU seconds of one process's threads, by kind. */
export type ThreadCpu = Record<ThreadKind, number>;

/** Each live thread of `pid`, by thread id. */
export function threadStats(pid: number): Map<number, TaskStat> {
  const out = new Map<number, TaskStat>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      out.set(Number(tid), readStat(`/proc/${pid}/task/${tid}/stat`));
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

/**
 * Follow the threads of `parent`'s first child (the command run under time(1)) until
 * `stop()`, which returns their CPU seconds by kind: each thread's last sample, so up to
 * `everyMs` of a thread's last CPU is missed. A sampled CPU profile cannot give this on a
 * busy machine: it counts a thread that is ready but not running as busy.
 */
export function watchThreadCpu(parent: number, everyMs = 20): { stop(): ThreadCpu } {
  let pid: number | undefined;
  const last = new Map<number, TaskStat>();
  const sample = () => {
    if (pid === undefined) {
      try {
        const children = readFileSync(`/proc/${parent}/task/${parent}/children`, 'utf8');
        const first = Number(children.trim().split(' ')[0]);
        if (first > 0) pid = first;
      } catch {
        return;
      }
    }
    if (pid !== undefined) for (const [tid, t] of threadStats(pid)) last.set(tid, t);
  };
  const timer = setInterval(sample, everyMs);
  return {
    stop() {
      clearInterval(timer);
      const sum: ThreadCpu = { main: 0, workers: 0, pool: 0, v8: 0, other: 0 };
      for (const [tid, t] of last) sum[threadKind(pid!, tid, t.comm)] += t.cpu;
      return sum;
    },
  };
}

export interface Timing {
  ms: number;
  peakRssMb: number;
  /** user + sys of the process and its children, seconds. */
  cpu: number;
  /** With `threads`: the command's own CPU by thread kind (sampled from /proc). */
  threads?: ThreadCpu;
}

/**
 * Run a command under /usr/bin/time; resolve with its wall time (ms), peak RSS (from
 * /proc, polled) and CPU seconds (user + sys, every thread and waited-for child), and
 * with `threads` its CPU by thread kind.
 */
export function timed(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  threads = false,
): Promise<Timing> {
  const out = join(
    tmpdir(),
    `loft-bench-time-${process.pid}-${Math.random().toString(36).slice(2)}`,
  );
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn('/usr/bin/time', ['-f', '%U %S %M', '-o', out, cmd, ...args], {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const byThread = threads && child.pid !== undefined ? watchThreadCpu(child.pid) : undefined;
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = performance.now() - t0;
      const threadCpu = byThread?.stop();
      // Read from time(1), which waits for the command: polling a PID would watch time itself.
      let cpu = NaN;
      let peakRssMb = NaN;
      try {
        const line = readFileSync(out, 'utf8').trim().split('\n').pop()!;
        const [u, s, maxKb] = line.split(' ').map(Number);
        cpu = u! + s!;
        peakRssMb = (maxKb! * 1024) / 1e6;
        rmSync(out, { force: true });
      } catch {
        // no CPU figure; reported as NaN
      }
      if (code === 0) resolve({ ms, peakRssMb, cpu, threads: threadCpu });
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.slice(-2000)}`));
    });
  });
}
