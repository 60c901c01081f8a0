/**
 * The socket transport against a listener whose queue is full: nix-daemon listens with a
 * backlog of 5 and accepts one connection per fork, so a pool opening a dozen connections
 * at once meets EAGAIN. A small Python listener that delays accept() makes that certain.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectSocket } from '../../../src/daemon/transport.js';
import { isLoftError } from '../../../src/util/errors.js';

/** A unix listener with backlog 1 that starts accepting after `delayMs` (or never). */
async function slowListener(path: string, delayMs: number | undefined) {
  const script = `
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(1)
print("ready", flush=True)
if sys.argv[2] == "never":
    time.sleep(60)
time.sleep(float(sys.argv[2]) / 1000)
conns = []
while True:
    c, _ = s.accept(); conns.append(c)
`;
  const child = spawn('python3', ['-c', script, path, String(delayMs ?? 'never')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('error', reject);
  });
  return { stop: () => child.kill('SIGKILL') };
}

test('connections beyond a full listen queue wait and succeed instead of failing with EAGAIN', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loft-backlog-'));
  const path = join(dir, 'socket');
  const listener = await slowListener(path, 300);
  try {
    const results = await Promise.allSettled(Array.from({ length: 12 }, () => connectSocket(path)));
    const failed = results.filter((r) => r.status === 'rejected');
    assert.deepEqual(
      failed.map((r) => String((r as PromiseRejectedResult).reason)),
      [],
      'every connection is made',
    );
    for (const r of results) if (r.status === 'fulfilled') r.value.destroy();
  } finally {
    listener.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a queue that stays full ends in a connection error naming the socket', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loft-backlog-'));
  const path = join(dir, 'socket');
  const listener = await slowListener(path, undefined);
  try {
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => connectSocket(path)));
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.ok(failed.length > 0, 'a listener that never accepts cannot take 8 connections');
    for (const f of failed) {
      assert.ok(isLoftError(f.reason), String(f.reason));
      assert.equal(f.reason.code, 'DAEMON_BUSY');
      assert.match(f.reason.message, new RegExp(path.replace(/[/.]/g, '\\$&')));
      assert.match(f.reason.message, /EAGAIN/);
    }
    for (const r of results) if (r.status === 'fulfilled') r.value.destroy();
  } finally {
    listener.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
