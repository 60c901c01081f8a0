/** What the benchmarks measure with: medians, and a process's memory and CPU from /proc. */
import { readdirSync, readFileSync } from 'node:fs';

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

/** A process's or thread's name and utime + stime in seconds (ticks of 1/100 s), from `stat`. */
function readStat(statFile: string): { comm: string; cpu: number } {
  const stat = readFileSync(statFile, 'utf8');
  const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { comm, cpu: (Number(fields[11]) + Number(fields[12])) / 100 };
}

/** utime + stime of a process, in seconds. */
export function cpuSeconds(pid: number): number {
  return readStat(`/proc/${pid}/stat`).cpu;
}

/** CPU seconds of one process's threads, by kind (Node names its threads). */
export interface ThreadCpu {
  /** The main thread: the event loop, requests, signing, the index. */
  main: number;
  /** Worker threads (Loft's packers and zstd workers). */
  workers: number;
  /** V8's helper threads: concurrent GC and compilation. */
  v8: number;
  /** libuv's thread pool and anything else. */
  other: number;
}

function threadTimes(pid: number): Map<number, { comm: string; cpu: number }> {
  const out = new Map<number, { comm: string; cpu: number }>();
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
  const last = new Map<number, { comm: string; cpu: number }>();
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
    if (pid !== undefined) for (const [tid, t] of threadTimes(pid)) last.set(tid, t);
  };
  const timer = setInterval(sample, everyMs);
  return {
    stop() {
      clearInterval(timer);
      const sum: ThreadCpu = { main: 0, workers: 0, v8: 0, other: 0 };
      for (const [tid, t] of last) {
        if (tid === pid) sum.main += t.cpu;
        else if (t.comm === 'WorkerThread') sum.workers += t.cpu;
        else if (t.comm.startsWith('V8')) sum.v8 += t.cpu;
        else sum.other += t.cpu;
      }
      return sum;
    },
  };
}
