import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProgressDisplay, ProgressTicker } from '../../../src/cli/progress.js';
import { PushProgress } from '../../../src/upload/events.js';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('the progress line draws nothing before the plan, and a log line goes above it, never on it', async () => {
  const p = new PushProgress();
  let out = '';
  const d = new ProgressDisplay(p, { write: (s: string) => (out += s), columns: 120 }, 5);
  d.start();
  await tick(30);
  assert.equal(out, '', 'no [0/0 paths] frame');
  p.pathsTotal = 3;
  p.narBytesTotal = 3000;
  await tick(30);
  assert.match(out, /\[0\/3 paths\]/);
  out = '';
  d.write('WARN  SIGINT: finishing uploads in flight\n');
  // Cleared first, then the line on its own, then the progress line again after it.
  assert.ok(
    out.startsWith('\r\x1b[2KWARN  SIGINT: finishing uploads in flight\n'),
    JSON.stringify(out),
  );
  assert.ok(
    out.slice(out.indexOf('\n') + 1).startsWith('\r\x1b[2K[0/3 paths]'),
    JSON.stringify(out),
  );
  d.stop();
});

test('the ticker logs a progress line per interval once there is a plan, and none when 0', async () => {
  const p = new PushProgress();
  const lines: Record<string, number>[] = [];
  const t = new ProgressTicker(p, (_m, f) => lines.push(f), 10);
  t.start();
  await tick(35);
  assert.equal(lines.length, 0, 'nothing to report before the plan');
  p.pathsTotal = 2;
  p.pathsPublished = 1;
  await tick(35);
  t.stop();
  assert.ok(lines.length >= 1);
  assert.equal(lines[0]!.pathsDone, 1);
  assert.equal(lines[0]!.pathsTotal, 2);
  const n = lines.length;
  await tick(30);
  assert.equal(lines.length, n, 'stopped');
  const off = new ProgressTicker(p, (_m, f) => lines.push(f), 0);
  off.start();
  await tick(20);
  off.stop();
  assert.equal(lines.length, n);
});
