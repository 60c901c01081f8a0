/**
 * `prune_schedule`: either an interval ("24h", "30m", "1h30m", "1d") or a daily time of day
 * ("00:00", "03:30", optionally "03:30 UTC"). Daily times are in the machine's local time
 * zone, as cron and systemd timers read them, because "00:00" in a config means the
 * midnight the operator sees; a " UTC" (or "Z") suffix pins them to UTC instead.
 *
 * Pure: no timers, no clock. `nextRun` takes `now` so the service and tests drive time.
 */

export type Schedule =
  | { readonly kind: 'interval'; readonly ms: number; readonly text: string }
  | {
      readonly kind: 'daily';
      readonly hour: number;
      readonly minute: number;
      readonly utc: boolean;
      readonly text: string;
    };

export type ScheduleParse = { ok: true; schedule: Schedule } | { ok: false; problem: string };

const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000 } as const;
/** Longer than any sane pruning period; mostly catches unit typos ("2400h"). */
export const MAX_INTERVAL_MS = 366 * UNIT_MS.d;

const INTERVAL_RE = /^(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?$/;
const DAILY_RE = /^(\d{1,2}):(\d{2})(?:\s*(utc|z))?$/;

export const SCHEDULE_FORMS =
  'an interval such as "24h", "30m", "1h30m" or "1d" (units d, h, m, s), ' +
  'or a daily local time "HH:MM" such as "00:00" or "03:30" (add " UTC" for UTC)';

export function tryParseSchedule(input: string): ScheduleParse {
  const text = input.trim();
  const lower = text.toLowerCase();
  const bad = (why: string): ScheduleParse => ({ ok: false, problem: why });

  const daily = DAILY_RE.exec(lower);
  if (daily) {
    const hour = Number(daily[1]);
    const minute = Number(daily[2]);
    if (hour > 23 || minute > 59) return bad(`${JSON.stringify(input)} is not a time of day`);
    return {
      ok: true,
      schedule: { kind: 'daily', hour, minute, utc: daily[3] !== undefined, text },
    };
  }

  const iv = lower === '' ? null : INTERVAL_RE.exec(lower);
  if (iv) {
    const [, d, h, m, s] = iv;
    const ms =
      Number(d ?? 0) * UNIT_MS.d +
      Number(h ?? 0) * UNIT_MS.h +
      Number(m ?? 0) * UNIT_MS.m +
      Number(s ?? 0) * UNIT_MS.s;
    if (ms === 0) return bad(`${JSON.stringify(input)} is a zero interval`);
    if (ms > MAX_INTERVAL_MS) return bad(`${JSON.stringify(input)} is longer than 366 days`);
    return { ok: true, schedule: { kind: 'interval', ms, text } };
  }
  if (/^\d+$/.test(lower)) return bad(`${JSON.stringify(input)} has no unit`);
  return bad(`${JSON.stringify(input)} is not a schedule`);
}

/** Throwing form for callers outside the config loader (which reports problems as data). */
export function parseSchedule(input: string): Schedule {
  const r = tryParseSchedule(input);
  if (!r.ok) throw new RangeError(`${r.problem}; expected ${SCHEDULE_FORMS}`);
  return r.schedule;
}

/** The time of day's occurrence on the calendar day of `day` (local or UTC). */
function occurrenceOn(s: Extract<Schedule, { kind: 'daily' }>, day: Date, dayOffset: number): Date {
  if (s.utc) {
    return new Date(
      Date.UTC(
        day.getUTCFullYear(),
        day.getUTCMonth(),
        day.getUTCDate() + dayOffset,
        s.hour,
        s.minute,
      ),
    );
  }
  // The Date constructor resolves local times the way Temporal's "compatible" does: a time
  // skipped by a DST jump moves forward past the gap, a repeated time takes its first
  // occurrence. So a daily run happens once per calendar day, DST or not.
  return new Date(day.getFullYear(), day.getMonth(), day.getDate() + dayOffset, s.hour, s.minute);
}

/**
 * When the job should next run, strictly after `now` unless a run is overdue.
 *
 * `lastRun` (persisted by the caller) makes restarts harmless: an interval counts from the
 * last run rather than from process start, and a daily time that passed while Loft was down
 * (lastRun before the latest occurrence) is due at once, like systemd's `Persistent=true`.
 * Without `lastRun` (first run ever) the first occurrence after `now` is returned.
 */
export function nextRun(schedule: Schedule, now: Date, lastRun?: Date): Date {
  const t = now.getTime();
  if (schedule.kind === 'interval') {
    if (lastRun === undefined) return new Date(t + schedule.ms);
    // A last run in the future means the clock went back: count from now instead.
    const due = Math.min(lastRun.getTime(), t) + schedule.ms;
    return new Date(Math.max(due, t));
  }
  const today = occurrenceOn(schedule, now, 0);
  const latest = today.getTime() <= t ? today : occurrenceOn(schedule, now, -1);
  if (lastRun !== undefined && lastRun.getTime() < latest.getTime()) return new Date(t);
  return today.getTime() > t ? today : occurrenceOn(schedule, now, 1);
}

export function formatSchedule(s: Schedule): string {
  if (s.kind === 'daily') {
    const hhmm = `${String(s.hour).padStart(2, '0')}:${String(s.minute).padStart(2, '0')}`;
    return s.utc ? `daily at ${hhmm} UTC` : `daily at ${hhmm} local time`;
  }
  let rest = s.ms;
  let out = '';
  for (const [unit, ms] of Object.entries(UNIT_MS)) {
    const n = Math.floor(rest / ms);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * ms;
  }
  return `every ${out}`;
}
