import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { logDirFor, logFileOf, uploadBuildLogs } from '../../../src/upload/build-logs.js';
import type { PathInfo } from '../../../src/store/path-info.js';
import type { PutOptions } from '../../../src/storage/port.js';
import { nullLogger } from '../../../src/util/log.js';

const drvA = `${'a'.repeat(32)}-app.drv`;
const drvB = `${'b'.repeat(32)}-plain.drv`;
const drvC = `${'c'.repeat(32)}-never-built-here.drv`;
const out = (c: string, name: string) => `/nix/store/${c.repeat(32)}-${name}`;

function info(path: string, deriver: string | undefined): PathInfo {
  return {
    path,
    deriver: deriver === undefined ? undefined : `/nix/store/${deriver}`,
    narHash: `sha256:${'0'.repeat(52)}`,
    narSize: 1,
    references: [],
    registrationTime: 0,
    ultimate: true,
    sigs: [],
    ca: undefined,
  };
}

test('the log directory: the system one, or the one beside a chroot store', () => {
  assert.equal(logDirFor(undefined), '/nix/var/log/nix');
  assert.equal(logDirFor('/srv/root/nix/store'), '/srv/root/nix/var/log/nix');
  assert.equal(
    logFileOf('/nix/var/log/nix', drvA),
    `/nix/var/log/nix/drvs/aa/${'a'.repeat(30)}-app.drv`,
  );
});

test('one log per derivation: bzip2 kept with its encoding, plain as is, missing ones skipped', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loft-logs-'));
  try {
    const bz2 = Buffer.from('BZh9 pretend-compressed');
    mkdirSync(join(dir, 'drvs', 'aa'), { recursive: true });
    writeFileSync(`${logFileOf(dir, drvA)}.bz2`, bz2);
    mkdirSync(join(dir, 'drvs', 'bb'), { recursive: true });
    writeFileSync(logFileOf(dir, drvB), 'plain log\n');
    const infos = new Map(
      [
        info(out('d', 'app'), drvA),
        info(out('e', 'app-dev'), drvA), // a second output of the same derivation
        info(out('f', 'plain'), drvB),
        info(out('g', 'substituted'), drvC),
        info(out('h', 'no-deriver'), undefined),
      ].map((i) => [i.path, i]),
    );
    const puts: { key: string; body: Buffer; opts: PutOptions | undefined }[] = [];
    const r = await uploadBuildLogs(
      { queryPathInfo: async (p) => infos.get(p) },
      {
        put: async (key, body, opts) => {
          puts.push({ key, body: Buffer.from(body), opts });
        },
      },
      [...infos.keys(), out('i', 'gone-meanwhile')].map((path) => ({ path })),
      { logger: nullLogger, logDir: dir },
    );
    assert.deepEqual(r, { uploaded: 2, missing: 1, failed: 0 });
    puts.sort((x, y) => x.key.localeCompare(y.key));
    assert.deepEqual(
      puts.map((p) => [p.key, p.opts?.contentEncoding]),
      [
        [`log/${drvA}`, 'bzip2'],
        [`log/${drvB}`, undefined],
      ],
    );
    assert.deepEqual(puts[0]!.body, bz2);
    assert.equal(puts[1]!.body.toString(), 'plain log\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a log that fails to upload is counted and logged, never thrown', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loft-logs-'));
  try {
    mkdirSync(join(dir, 'drvs', 'aa'), { recursive: true });
    writeFileSync(logFileOf(dir, drvA), 'x');
    const warned: string[] = [];
    const r = await uploadBuildLogs(
      { queryPathInfo: async (p) => info(p, drvA) },
      {
        put: async () => {
          throw new Error('503 Slow Down');
        },
      },
      [{ path: out('d', 'app') }],
      { logger: { ...nullLogger, warn: (m: string) => warned.push(m) }, logDir: dir },
    );
    assert.deepEqual(r, { uploaded: 0, missing: 0, failed: 1 });
    assert.match(warned[0]!, /could not upload the build log of .*-app\.drv: 503 Slow Down/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
