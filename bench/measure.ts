/** What the benchmarks measure with: medians, and a process's memory and CPU from /proc. */
import { readFileSync } from 'node:fs';

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

/** utime + stime of a process, in seconds (clock ticks of 1/100 s). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
