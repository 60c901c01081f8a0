import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  compressionStats,
  getCompression,
  shutdownCompression,
} from '../../../src/compress/index.js';
import { ProcessCompressStream } from '../../../src/compress/process-stream.js';
import { Slots } from '../../../src/compress/slots.js';
import { ZstdPool } from '../../../src/compress/zstd-pool.js';
import { ZstdCompressStream } from '../../../src/compress/zstd-stream.js';
import { isLoftError } from '../../../src/util/errors.js';
import { pushActionFor } from '../../../src/util/failure-policy.js';
import { closed, generate } from './support.js';

after(() => shutdownCompression());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

test('zstd: a compressor destroyed mid-stream frees its worker session', async () => {
  const pool = new ZstdPool({ size: 2 });
  try {
    const streams = [0, 1, 2].map(() => new ZstdCompressStream(pool, 3, { maxInflight: 2 }));
    for (const s of streams) {
      s.resume();
      for (const b of generate('text', 3 * 1024 * 1024, 256 * 1024)) s.write(b);
    }
    await until(() => pool.stats().sessions === 3, 'three sessions');
    assert.equal(pool.stats().workers, 2);
    const [a, b, c] = streams as [ZstdCompressStream, ZstdCompressStream, ZstdCompressStream];
    a.destroy();
    await closed(a);
    assert.equal(pool.stats().sessions, 2);
    b.on('error', () => {});
    b.destroy(new Error('upload aborted'));
    await closed(b);
    assert.match(String(b.errored), /upload aborted/);
    assert.equal(pool.stats().sessions, 1);
    // The survivor is unaffected and completes.
    const ended = once(c, 'end');
    c.end();
    await ended;
    assert.equal(pool.stats().sessions, 0);
  } finally {
    await pool.shutdown();
  }
  assert.equal(pool.stats().workers, 0);
});

test('zstd: shutting the pool down fails streams still compressing, clearly', async () => {
  const pool = new ZstdPool({ size: 1 });
  const s = new ZstdCompressStream(pool, 3, { maxInflight: 2 });
  s.resume();
  s.write(Buffer.alloc(2 * 1024 * 1024, 1));
  await until(() => pool.stats().sessions === 1, 'a session');
  const err = new Promise<unknown>((resolve) => s.on('error', resolve));
  await pool.shutdown();
  const e = await err;
  assert.ok(isLoftError(e, 'COMPRESSION_FAILED'), String(e));
  assert.match(e.message, /shut down/);
  // The pool is usable again afterwards.
  const again = new ZstdCompressStream(pool, 3, { maxInflight: 2 });
  again.resume();
  const ended = once(again, 'end');
  again.end(Buffer.from('after shutdown'));
  await ended;
  await pool.shutdown();
});

test('zstd: idle workers exit after the idle period and do not keep the process alive', async () => {
  const pool = new ZstdPool({ size: 1, idleMs: 100 });
  const s = new ZstdCompressStream(pool, 3, { maxInflight: 2 });
  s.resume();
  const ended = once(s, 'end');
  s.end(Buffer.from('x'));
  await ended;
  assert.equal(pool.stats().workers, 1);
  await until(() => pool.stats().workers === 0, 'the idle worker to exit', 3000);

  // A process that compresses, destroys a stream mid-way and never calls shutdown still
  // exits on its own promptly.
  const script = `
    import { getCompression } from ${JSON.stringify(
      fileURLToPath(new URL('../../../src/compress/index.js', import.meta.url)),
    )};
    const s = getCompression('zstd').createCompressor();
    s.resume();
    s.write(Buffer.alloc(4 << 20, 7));
    setTimeout(() => s.destroy(), 50);
    const t = getCompression('zstd').createCompressor();
    t.resume();
    t.on('end', () => console.log('done'));
    t.end(Buffer.from('bye'));
  `;
  // Without node:test's marker, or the child would report to the test runner.
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  const dir = mkdtempSync(join(tmpdir(), 'loft-compress-exit-'));
  const file = join(dir, 'exit.mjs');
  writeFileSync(file, script);
  const child = spawn(process.execPath, [file], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env,
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const started = Date.now();
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
  clearTimeout(timer);
  rmSync(dir, { recursive: true, force: true });
  assert.equal(signal, null, 'the process had to be killed: something kept it alive');
  assert.equal(code, 0);
  assert.equal(out.trim(), 'done');
  assert.ok(Date.now() - started < 8000);
});

test('xz: a compressor destroyed mid-stream kills its process and frees its slot', async () => {
  const s = getCompression('xz').createCompressor() as ProcessCompressStream;
  s.resume();
  for (const b of generate('text', 1024 * 1024, 64 * 1024)) s.write(b);
  await until(() => s.pid !== undefined, 'xz to start');
  const pid = s.pid as number;
  assert.ok(alive(pid));
  assert.equal(compressionStats().xzRunning, 1);
  s.destroy();
  await closed(s);
  // 'close' waits for the process to be reaped, so it is gone by now.
  assert.equal(alive(pid), false, `xz ${pid} still running after destroy`);
  assert.equal(compressionStats().xzRunning, 0);
});

test('xz: no more programs than slots; a waiting compressor starts when one frees, or leaves the queue when destroyed', async () => {
  const slots = new Slots(1);
  const mk = () =>
    new ProcessCompressStream({ method: 'xz', command: 'xz', args: ['-c', '-1'], slots });
  const first = mk();
  const second = mk();
  const third = mk();
  for (const s of [first, second, third]) s.resume();
  await until(() => first.pid !== undefined, 'the first xz');
  assert.equal(second.pid, undefined);
  assert.equal(slots.waiting, 2);
  // Writes to a waiting compressor are held, not lost.
  second.write(Buffer.from('queued bytes'));
  third.destroy();
  await closed(third);
  assert.equal(slots.waiting, 1);
  const firstDone = once(first, 'end');
  first.end(Buffer.from('one'));
  await firstDone;
  await until(() => second.pid !== undefined, 'the second xz to start');
  const chunks: Buffer[] = [];
  second.removeAllListeners('data');
  second.on('data', (b: Buffer) => chunks.push(b));
  const secondDone = once(second, 'end');
  second.end();
  await secondDone;
  assert.equal(slots.inUse, 0);
  const { execFileSync } = await import('node:child_process');
  const back = execFileSync('xz', ['-d', '-c'], { input: Buffer.concat(chunks) });
  assert.equal(back.toString(), 'queued bytes');
});

test('a compressing program killed by SIGINT (a Ctrl-C that reached it as it started) is COMPRESSION_INTERRUPTED, which retries the path', async () => {
  const interrupted = new ProcessCompressStream({
    method: 'test',
    command: 'sh',
    args: ['-c', 'kill -INT $$'],
    slots: new Slots(1),
  });
  interrupted.resume();
  const e = new Promise<unknown>((resolve) => interrupted.on('error', resolve));
  interrupted.end(Buffer.from('data'));
  const err = await e;
  assert.ok(isLoftError(err, 'COMPRESSION_INTERRUPTED'), String(err));
  assert.match(err.message, /sh was killed by SIGINT/);
  assert.equal(pushActionFor(err), 'retry-path');
});

test('a compressing program that fails reports its exit status and stderr', async () => {
  const slots = new Slots(1);
  const failing = new ProcessCompressStream({
    method: 'test',
    command: 'sh',
    args: ['-c', 'cat >/dev/null; echo "disk on fire" >&2; exit 3'],
    slots,
  });
  failing.resume();
  const e1 = new Promise<unknown>((resolve) => failing.on('error', resolve));
  failing.end(Buffer.from('data'));
  const err1 = await e1;
  assert.ok(isLoftError(err1, 'COMPRESSION_FAILED'));
  assert.match(err1.message, /sh exited with code 3: disk on fire/);

  // A program that dies while we are still writing fails the stream instead of hanging.
  const dying = new ProcessCompressStream({
    method: 'test',
    command: 'sh',
    args: ['-c', 'head -c 10 >/dev/null; exit 0'],
    slots,
  });
  dying.resume();
  const e2 = new Promise<unknown>((resolve) => dying.on('error', resolve));
  (async () => {
    for (const b of generate('random', 8 * 1024 * 1024, 64 * 1024)) {
      if (dying.destroyed) return;
      if (!dying.write(b)) await Promise.race([once(dying, 'drain'), once(dying, 'close')]);
    }
  })().catch(() => {});
  const err2 = await e2;
  assert.ok(isLoftError(err2, 'COMPRESSION_FAILED'), String(err2));
  assert.match(err2.message, /exited before its input ended/);
  await closed(dying);
  assert.equal(slots.inUse, 0);
});

test('thread pool: warm() starts threads up to the pool size, a job then takes one of them, and unused ones go after the idle period', async () => {
  const { ThreadPool } = await import('../../../src/compress/thread-pool.js');
  const pool = new ThreadPool<{ t: 'stop' }, { id: number }>({
    url: new URL('../../../src/compress/zstd-worker.js', import.meta.url),
    size: 2,
    idleMs: 200,
    failure: (cause) => cause ?? new Error('shut down'),
  });
  try {
    pool.warm(5);
    assert.equal(pool.stats().threads, 2, 'no more than the pool size');
    pool.warm(1);
    assert.equal(pool.stats().threads, 2);
    const { id, thread } = pool.take();
    thread.attach(id, { receive: () => {}, fail: () => {} });
    assert.equal(pool.stats().threads, 2, 'the job runs on a warmed thread');
    thread.detach(id);
    await until(() => pool.stats().threads === 0, 'the idle threads to go');
  } finally {
    await pool.shutdown();
  }
});
