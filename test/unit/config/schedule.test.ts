// Daily times are local time: these tests run in a zone with DST (each test file is its own
// process under node --test, so setting TZ here affects only this file).
process.env.TZ = 'Europe/Berlin';

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  formatSchedule,
  nextRun,
  parseSchedule,
  tryParseSchedule,
  type Schedule,
} from '../../../src/config/schedule.js';

const H = 3_600_000;
const M = 60_000;
const utc = (s: string) => new Date(s);

test('the zone really is Europe/Berlin with DST (otherwise the DST tests prove nothing)', () => {
  assert.equal(new Date('2024-01-15T12:00:00Z').getTimezoneOffset(), -60);
  assert.equal(new Date('2024-07-15T12:00:00Z').getTimezoneOffset(), -120);
});

test('interval forms', () => {
  const ms = (s: string) => {
    const r = parseSchedule(s);
    assert.equal(r.kind, 'interval', s);
    return r.kind === 'interval' ? r.ms : NaN;
  };
  assert.equal(ms('24h'), 24 * H);
  assert.equal(ms('30m'), 30 * M);
  assert.equal(ms('1h30m'), 90 * M);
  assert.equal(ms('1h 30m'), 90 * M);
  assert.equal(ms('1d'), 24 * H);
  assert.equal(ms('1d12h'), 36 * H);
  assert.equal(ms('90s'), 90_000);
  assert.equal(ms(' 24H '), 24 * H);
  assert.equal(ms('366d'), 366 * 24 * H);
});

test('daily forms', () => {
  assert.deepEqual(parseSchedule('00:00'), {
    kind: 'daily',
    hour: 0,
    minute: 0,
    utc: false,
    text: '00:00',
  });
  assert.deepEqual(parseSchedule('3:30'), {
    kind: 'daily',
    hour: 3,
    minute: 30,
    utc: false,
    text: '3:30',
  });
  assert.deepEqual(parseSchedule('03:30 UTC'), {
    kind: 'daily',
    hour: 3,
    minute: 30,
    utc: true,
    text: '03:30 UTC',
  });
  assert.equal((parseSchedule('23:59Z') as { utc: boolean }).utc, true);
});

test('bad schedules are rejected with a reason', () => {
  const bad: [string, RegExp][] = [
    ['', /is not a schedule/],
    ['0h', /zero interval/],
    ['0d0h', /zero interval/],
    ['24', /has no unit/],
    ['1x', /is not a schedule/],
    ['h', /is not a schedule/],
    ['30m1h', /is not a schedule/],
    ['1.5h', /is not a schedule/],
    ['-1h', /is not a schedule/],
    ['367d', /longer than 366 days/],
    ['24:00', /is not a time of day/],
    ['12:60', /is not a time of day/],
    ['3:5', /is not a schedule/],
    ['03:30 CET', /is not a schedule/],
    ['daily', /is not a schedule/],
  ];
  for (const [s, why] of bad) {
    const r = tryParseSchedule(s);
    assert.ok(!r.ok, `${JSON.stringify(s)} should be rejected`);
    assert.match(r.problem, why, s);
    assert.throws(() => parseSchedule(s), /expected an interval such as "24h"/);
  }
});

test('interval arithmetic matches its parts (property)', () => {
  fc.assert(
    fc.property(fc.nat(300), fc.nat(23), fc.nat(59), fc.nat(59), (d, h, m, s) => {
      fc.pre(d + h + m + s > 0);
      const r = parseSchedule(`${d}d${h}h${m}m${s}s`);
      const want = ((d * 24 + h) * 60 + m) * 60_000 + s * 1000;
      return (
        r.kind === 'interval' &&
        r.ms === want &&
        parseSchedule(formatSchedule(r).replace('every ', '')).kind === 'interval'
      );
    }),
  );
});

test('formatSchedule says what it means', () => {
  assert.equal(formatSchedule(parseSchedule('1h30m')), 'every 1h30m');
  assert.equal(formatSchedule(parseSchedule('36h')), 'every 1d12h');
  assert.equal(formatSchedule(parseSchedule('3:05')), 'daily at 03:05 local time');
  assert.equal(formatSchedule(parseSchedule('00:00 utc')), 'daily at 00:00 UTC');
});

test('interval nextRun counts from the last run, not from start-up', () => {
  const s = parseSchedule('24h');
  const now = utc('2024-05-10T12:00:00Z');
  assert.deepEqual(nextRun(s, now), utc('2024-05-11T12:00:00Z'), 'first run ever: one interval on');
  assert.deepEqual(
    nextRun(s, now, utc('2024-05-10T02:00:00Z')),
    utc('2024-05-11T02:00:00Z'),
    'a restart does not postpone the next run',
  );
  assert.deepEqual(nextRun(s, now, utc('2024-05-01T00:00:00Z')), now, 'overdue: now');
  assert.deepEqual(
    nextRun(s, now, utc('2024-06-01T00:00:00Z')),
    utc('2024-05-11T12:00:00Z'),
    'a last run in the future (clock went back) counts from now',
  );
});

test('daily UTC nextRun crosses midnight, month and year ends', () => {
  const s = parseSchedule('00:00 UTC');
  assert.deepEqual(nextRun(s, utc('2024-01-01T23:59:00Z')), utc('2024-01-02T00:00:00Z'));
  assert.deepEqual(
    nextRun(s, utc('2024-01-02T00:00:00Z')),
    utc('2024-01-03T00:00:00Z'),
    'exactly at the time: the next day, so a finished run is not repeated',
  );
  assert.deepEqual(nextRun(s, utc('2024-02-28T12:00:00Z')), utc('2024-02-29T00:00:00Z'));
  assert.deepEqual(nextRun(s, utc('2024-12-31T12:00:00Z')), utc('2025-01-01T00:00:00Z'));
  const t = parseSchedule('03:30 UTC');
  assert.deepEqual(nextRun(t, utc('2024-03-31T00:00:00Z')), utc('2024-03-31T03:30:00Z'));
  assert.deepEqual(nextRun(t, utc('2024-03-31T03:31:00Z')), utc('2024-04-01T03:30:00Z'));
});

test('daily nextRun catches up a run missed while down, once', () => {
  const s = parseSchedule('00:00 UTC');
  const now = utc('2024-01-02T10:00:00Z');
  assert.deepEqual(nextRun(s, now, utc('2024-01-01T00:00:00Z')), now, 'missed today 00:00');
  assert.deepEqual(
    nextRun(s, now, utc('2024-01-02T00:00:05Z')),
    utc('2024-01-03T00:00:00Z'),
    'already ran today',
  );
  assert.deepEqual(nextRun(s, now, now), utc('2024-01-03T00:00:00Z'), 'just caught up');
});

test('daily local time: midnight is local midnight', () => {
  const s = parseSchedule('00:00');
  // 23:59 CET on Jan 1 = 22:59Z; local midnight = 23:00Z.
  assert.deepEqual(nextRun(s, utc('2024-01-01T22:59:00Z')), utc('2024-01-01T23:00:00Z'));
  // Summer: CEST is UTC+2, so local midnight is 22:00Z.
  assert.deepEqual(nextRun(s, utc('2024-07-01T21:00:00Z')), utc('2024-07-01T22:00:00Z'));
});

test('daily local time on the DST days: skipped time runs after the gap, repeated time once', () => {
  const s = parseSchedule('02:30');
  // 2024-03-31: 02:00 CET jumps to 03:00 CEST, so 02:30 does not exist: runs 03:30 CEST.
  const spring = nextRun(s, utc('2024-03-31T00:00:00Z'));
  assert.deepEqual(spring, utc('2024-03-31T01:30:00Z'));
  assert.deepEqual(nextRun(s, spring, spring), utc('2024-04-01T00:30:00Z'));
  // 2024-10-27: 03:00 CEST falls back to 02:00 CET, so 02:30 happens twice: the first one.
  const autumn = nextRun(s, utc('2024-10-26T23:00:00Z'));
  assert.deepEqual(autumn, utc('2024-10-27T00:30:00Z'));
  assert.deepEqual(
    nextRun(s, utc('2024-10-27T00:31:00Z'), autumn),
    utc('2024-10-28T01:30:00Z'),
    'not again at the second 02:30',
  );
  assert.deepEqual(
    nextRun(s, utc('2024-10-27T01:15:00Z')),
    utc('2024-10-28T01:30:00Z'),
    'started during the repeated hour: not a second run today',
  );
});

test('a daily schedule fires exactly once per local calendar day for a whole year', () => {
  for (const text of ['02:30', '00:00', '23:59']) {
    const s: Schedule = parseSchedule(text);
    let now = utc('2024-01-01T12:00:00Z');
    let last: Date | undefined;
    const days: string[] = [];
    for (let i = 0; i < 370; i++) {
      const next = nextRun(s, now, last);
      assert.ok(next.getTime() > now.getTime() || last === undefined);
      days.push(`${next.getFullYear()}-${next.getMonth() + 1}-${next.getDate()}`);
      now = next;
      last = next;
    }
    assert.equal(new Set(days).size, days.length, `${text}: no day twice`);
    // Consecutive days: the gap between runs is 23, 24 or 25 hours (DST days).
    let prev = nextRun(s, utc('2024-01-01T12:00:00Z'));
    for (let i = 0; i < 370; i++) {
      const next = nextRun(s, prev, prev);
      const gap = (next.getTime() - prev.getTime()) / H;
      assert.ok(gap >= 23 && gap <= 25, `${text}: gap ${gap}h after ${prev.toISOString()}`);
      prev = next;
    }
  }
});
