import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSchedule } from '../../../src/config/schedule.js';
import { PruneScheduler } from '../../../src/service/prune-schedule.js';
import { MemoryLogger } from '../../../src/util/log.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function scheduler(
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
      runs.push(new Date());
      await run(signal);
      return { text: 'ok', interrupted: signal.aborted };
    },
    lastRun: () => last,
    recordRun: (at, text) => {
      last = at;
      recorded.push([at, text]);
    },
    logger: new MemoryLogger(),
  });
  return { s, runs, recorded };
}

test('an interval counts from the last run, which is recorded after each prune', async () => {
  const { s, runs, recorded } = scheduler('1s', new Date(Date.now() - 800), async () => {});
  s.start();
  assert.ok(s.nextAt!.getTime() - Date.now() < 300, 'due 1 s after the last run, not after start');
  await sleep(500);
  assert.equal(runs.length, 1);
  assert.equal(recorded.length, 1);
  assert.ok(s.nextAt!.getTime() > Date.now() + 500, 'the next one is an interval later');
  await s.stop();
});

test('a daily time missed while the service was down runs at start', async () => {
  const { s, runs } = scheduler('00:00', new Date(Date.now() - 3 * 86_400_000), async () => {});
  s.start();
  await sleep(100);
  assert.equal(runs.length, 1);
  await s.stop();
});

test('a run weeks away never fires early (setTimeout caps at ~24.8 days)', async () => {
  const { s, runs } = scheduler('300d', new Date(), async () => {});
  s.start();
  await sleep(100);
  assert.equal(runs.length, 0);
  await s.stop();
});

test('stop() asks a running prune to stop and waits for it; an interrupted prune is not recorded', async () => {
  let sawAbort = false;
  const { s, runs, recorded } = scheduler('1s', new Date(0), async (signal) => {
    await new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }));
    sawAbort = true;
  });
  s.start();
  await sleep(100);
  assert.equal(runs.length, 1);
  await s.stop();
  assert.ok(sawAbort);
  assert.deepEqual(recorded, []);
});

test('a failed prune is logged and the schedule goes on from it', async () => {
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
  });
  s.start();
  await sleep(100);
  assert.match(logger.text(), /scheduled prune failed: S3 said no/);
  assert.ok(s.nextAt!.getTime() > Date.now() + 3_000_000);
  await s.stop();
});
