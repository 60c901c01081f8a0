import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { parseSchedule } from '../../../src/config/schedule.js';
import { PruneScheduler } from '../../../src/service/prune-schedule.js';
import { MemoryLogger } from '../../../src/util/log.js';

/**
 * A fake clock: the scheduler's `now` and its timers (node:test's mock timers) move only
 * when the test advances them, so no test sleeps on the real clock.
 */
function fakeClock(t: TestContext, start = Date.parse('2026-03-01T12:00:00Z')) {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let ms = start;
  return {
    now: () => new Date(ms),
    async advance(by: number) {
      ms += by;
      t.mock.timers.tick(by);
      // Let the prune that fired run to its end (it awaits the runner).
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    },
  };
}

function scheduler(
  clock: ReturnType<typeof fakeClock>,
  schedule: string,
  lastRun: Date | undefined,
  run: (s: AbortSignal) => Promise<void>,
) {
  const runs: Date[] = [];
  const recorded: [Date, string][] = [];
  let last = lastRun;
  const s = new PruneScheduler({
    schedule: parseSchedule(schedule),
    run: async (signal) => {
      runs.push(clock.now());
      await run(signal);
      return { text: 'ok', interrupted: signal.aborted };
    },
    lastRun: () => last,
    recordRun: (at, text) => {
      last = at;
      recorded.push([at, text]);
    },
    logger: new MemoryLogger(),
    now: clock.now,
  });
  return { s, runs, recorded };
}

test('an interval counts from the last run, which is recorded after each prune', async (t) => {
  const clock = fakeClock(t);
  const t0 = clock.now().getTime();
  const { s, runs, recorded } = scheduler(clock, '1s', new Date(t0 - 800), async () => {});
  s.start();
  assert.equal(s.nextAt!.getTime(), t0 + 200, 'due 1 s after the last run, not after start');
  await clock.advance(199);
  assert.equal(runs.length, 0, 'not before it is due');
  await clock.advance(1);
  assert.equal(runs.length, 1);
  assert.equal(recorded.length, 1);
  assert.equal(recorded[0]![0].getTime(), t0 + 200);
  assert.equal(s.nextAt!.getTime(), t0 + 1200, 'the next one is an interval later');
  await clock.advance(1000);
  assert.equal(runs.length, 2);
  await s.stop();
});

test('a daily time missed while the service was down runs at start', async (t) => {
  const clock = fakeClock(t);
  const { s, runs } = scheduler(
    clock,
    '00:00',
    new Date(clock.now().getTime() - 3 * 86_400_000),
    async () => {},
  );
  s.start();
  await clock.advance(0);
  assert.equal(runs.length, 1);
  await s.stop();
});

test('a run weeks away never fires early (setTimeout caps at ~24.8 days)', async (t) => {
  const clock = fakeClock(t);
  const { s, runs } = scheduler(clock, '300d', clock.now(), async () => {});
  s.start();
  // Past setTimeout's limit: the capped timer fires and re-arms instead of pruning.
  await clock.advance(2 ** 31);
  await clock.advance(2 ** 31);
  assert.equal(runs.length, 0);
  await s.stop();
});

test('stop() asks a running prune to stop and waits for it; an interrupted prune is not recorded', async (t) => {
  const clock = fakeClock(t);
  let sawAbort = false;
  const { s, runs, recorded } = scheduler(clock, '1s', new Date(0), async (signal) => {
    await new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }));
    sawAbort = true;
  });
  s.start();
  await clock.advance(0);
  assert.equal(runs.length, 1);
  await s.stop();
  assert.ok(sawAbort);
  assert.deepEqual(recorded, []);
});

test('a failed prune is logged and the schedule goes on from it', async (t) => {
  const clock = fakeClock(t);
  const logger = new MemoryLogger();
  let last: Date | undefined = new Date(0);
  const s = new PruneScheduler({
    schedule: parseSchedule('1h'),
    run: async () => {
      throw new Error('S3 said no');
    },
    lastRun: () => last,
    recordRun: (at) => {
      last = at;
    },
    logger,
    now: clock.now,
  });
  s.start();
  await clock.advance(0);
  assert.match(logger.text(), /scheduled prune failed: S3 said no/);
  assert.equal(s.nextAt!.getTime(), clock.now().getTime() + 3_600_000);
  await s.stop();
});
