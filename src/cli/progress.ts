/**
 * The live progress line on a terminal: paths done/total, bytes read and written, rate and
 * ETA, redrawn a few times a second from the pipeline's running totals (PushProgress).
 */
import type { PushProgress } from '../upload/events.js';
import { formatBytes, formatDuration, formatRate } from '../util/format.js';

export interface TerminalStream {
  write(chunk: string): unknown;
  columns?: number;
}

export function progressLine(p: PushProgress, elapsedMs: number, width = 100): string {
  const done = p.pathsPublished + p.pathsFailed;
  const rate = elapsedMs > 0 ? p.narBytesRead / elapsedMs : 0;
  const left = Math.max(0, p.narBytesTotal - p.narBytesRead);
  const eta = rate > 0 ? formatDuration(left / rate) : '-';
  const line =
    `[${done}/${p.pathsTotal} paths${p.pathsFailed ? `, ${p.pathsFailed} failed` : ''}] ` +
    `${formatBytes(p.narBytesRead)} / ${formatBytes(p.narBytesTotal)} read, ` +
    `${formatBytes(p.fileBytesWritten)} written, ${formatRate(p.narBytesRead, elapsedMs)}, ETA ${eta}`;
  return line.length > width ? line.slice(0, width - 1) + '…' : line;
}

export class ProgressDisplay {
  private timer: NodeJS.Timeout | undefined;
  private readonly started = Date.now();
  private shown = false;

  constructor(
    private readonly progress: PushProgress,
    private readonly out: TerminalStream,
    private readonly intervalMs = 200,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.draw(), this.intervalMs);
    this.timer.unref();
  }

  /** Print a log line above the progress line without garbling it. */
  above(text: string): void {
    this.clear();
    this.out.write(text.endsWith('\n') ? text : `${text}\n`);
    if (this.timer) this.draw();
  }

  /** The same, for a logger's redirected lines (see CliLogger.redirect). */
  readonly write = (chunk: string): void => this.above(chunk);

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.clear();
  }

  private draw(): void {
    // Nothing to show before the plan: no "[0/0 paths] 0 B / 0 B" frame.
    if (this.progress.pathsTotal === 0) return;
    const width = (this.out.columns ?? 100) - 1;
    this.out.write(`\r\x1b[2K${progressLine(this.progress, Date.now() - this.started, width)}`);
    this.shown = true;
  }

  private clear(): void {
    if (this.shown) this.out.write('\r\x1b[2K');
    this.shown = false;
  }
}

/**
 * Progress for logs instead of a terminal: one `progress` line every `intervalMs` while a
 * push runs, so CI and journald show that a long push is alive; a push shorter than the
 * interval prints none.
 */
export class ProgressTicker {
  private timer: NodeJS.Timeout | undefined;
  private readonly started = Date.now();

  constructor(
    private readonly progress: PushProgress,
    private readonly log: (msg: string, fields: Record<string, number>) => void,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    if (this.intervalMs <= 0) return;
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    const p = this.progress;
    if (p.pathsTotal === 0) return;
    const ms = Date.now() - this.started;
    this.log(progressLine(p, ms, Number.MAX_SAFE_INTEGER), {
      pathsDone: p.pathsPublished + p.pathsFailed,
      pathsTotal: p.pathsTotal,
      pathsFailed: p.pathsFailed,
      narBytesRead: p.narBytesRead,
      narBytesTotal: p.narBytesTotal,
      fileBytesWritten: p.fileBytesWritten,
      ms,
    });
  }
}
