import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  compressionNames,
  getCompression,
  shutdownCompression,
  type CompressionName,
} from '../../../src/compress/index.js';
import { isLoftError, LoftError } from '../../../src/util/errors.js';

after(() => shutdownCompression());

test('each method has its narinfo name and file extension', () => {
  const expect: Record<CompressionName, [string, string, number | undefined]> = {
    zstd: ['zstd', '.zst', 3],
    xz: ['xz', '.xz', 6],
    none: ['none', '', undefined],
  };
  assert.deepEqual([...compressionNames].sort(), Object.keys(expect).sort());
  for (const [name, [narinfoName, extension, level]] of Object.entries(expect)) {
    const c = getCompression(name);
    assert.equal(c.name, name);
    assert.equal(c.narinfoName, narinfoName);
    assert.equal(c.extension, extension);
    assert.equal(c.defaultLevel, level);
  }
});

test('an unknown method is a config error naming the value and the choices', () => {
  for (const bad of ['gzip', 'ZSTD', '', 'toString', '__proto__']) {
    assert.throws(
      () => getCompression(bad),
      (e: unknown) => {
        assert.ok(isLoftError(e, 'COMPRESSION_UNKNOWN'));
        assert.equal(e.kind, 'config');
        assert.ok(e.message.includes(JSON.stringify(bad)), e.message);
        assert.match(e.hint ?? '', /"zstd".*"xz".*"none"/);
        return true;
      },
    );
  }
});

test('invalid levels are rejected at once, with the value and the accepted range', () => {
  const cases: [string, unknown, RegExp][] = [
    ['zstd', 0, /from 1 to 19/],
    ['zstd', 20, /from 1 to 19/],
    ['zstd', 22, /from 1 to 19/],
    ['zstd', -1, /from 1 to 19/],
    ['zstd', 2.5, /from 1 to 19/],
    ['zstd', Number.NaN, /from 1 to 19/],
    ['zstd', '3', /from 1 to 19/],
    ['xz', 10, /from 0 to 9/],
    ['xz', -1, /from 0 to 9/],
  ];
  for (const [method, level, range] of cases) {
    assert.throws(
      () => getCompression(method).createCompressor({ level: level as number }),
      (e: unknown) => {
        assert.ok(isLoftError(e, 'COMPRESSION_LEVEL_INVALID'), String(e));
        assert.equal(e.kind, 'config');
        assert.match(e.message, range);
        assert.ok(e.message.includes(method));
        assert.ok(
          e.message.includes(typeof level === 'string' ? `"${level}"` : String(level)),
          e.message,
        );
        assert.ok(e.hint);
        return true;
      },
      `${method} level ${String(level)}`,
    );
  }
});

test('"none" ignores a level (the config loader warns about one) and passes bytes through', async () => {
  const s = getCompression('none').createCompressor({ level: 3 });
  const out: Buffer[] = [];
  s.on('data', (b: Buffer) => out.push(b));
  const ended = new Promise((resolve) => s.on('end', resolve));
  s.end(Buffer.from('as is'));
  await ended;
  assert.equal(Buffer.concat(out).toString(), 'as is');
});

test('check() passes for every method on this machine', async () => {
  for (const name of compressionNames) await getCompression(name).check();
});

test('xz missing from PATH: check() and a compressor fail with a clear environment error', async () => {
  const empty = mkdtempSync(join(tmpdir(), 'loft-compress-nopath-'));
  const saved = process.env.PATH;
  process.env.PATH = empty;
  try {
    const xz = getCompression('xz');
    await assert.rejects(xz.check(), (e: unknown) => {
      assert.ok(isLoftError(e, 'COMPRESSION_TOOL_MISSING'));
      assert.equal(e.kind, 'environment');
      assert.match(e.message, /`xz` program, which is not on PATH/);
      assert.match(e.hint ?? '', /xz-utils/);
      return true;
    });
    const s = xz.createCompressor();
    const err = await new Promise<unknown>((resolve) => {
      s.on('error', resolve);
      s.end(Buffer.from('hello'));
    });
    assert.ok(err instanceof LoftError && err.code === 'COMPRESSION_TOOL_MISSING', String(err));
  } finally {
    process.env.PATH = saved;
    rmSync(empty, { recursive: true, force: true });
  }
});
