/** The local directory backend on a real file system (a temp dir per test). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalDirStore, TEMP_PREFIX } from '../../../src/storage/local-dir-store.js';
import type { BlobStore } from '../../../src/storage/port.js';
import { isLoftError } from '../../../src/util/errors.js';
import { patternSha256, patternStream, sha256OfStream } from '../../support/s3.js';
import { createReadStream } from 'node:fs';
import { collect } from '../../support/iter.js';

function fresh(t: { after(fn: () => void): void }): { dir: string; store: BlobStore } {
  const dir = mkdtempSync(join(tmpdir(), 'loft-localdir-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, store: createLocalDirStore({ dir: join(dir, 'cache') }) };
}

/** Every file name under a directory, temp files included. */
function allFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => d.name);
}

test('put, get, head, and the file:// layout on disk', async (t) => {
  const { dir, store } = fresh(t);
  assert.equal(store.id, `file://${join(dir, 'cache')}`);
  await store.check();
  await store.put('nix-cache-info', 'StoreDir: /nix/store\n');
  await store.put('nar/abc.nar.zst', Buffer.from([1, 2, 3]));
  assert.equal(
    readFileSync(join(dir, 'cache', 'nix-cache-info'), 'utf8'),
    'StoreDir: /nix/store\n',
  );
  assert.deepEqual(await store.get('nar/abc.nar.zst'), Buffer.from([1, 2, 3]));
  assert.equal(await store.get('missing.narinfo'), undefined);
  assert.equal(await store.get('nar/missing/deeper'), undefined);
  const h = await store.head('nar/abc.nar.zst');
  assert.equal(h?.size, 3);
  assert.ok(h!.lastModified instanceof Date);
  assert.equal(await store.head('nope'), undefined);
  assert.equal((await store.head('nix-cache-info'))?.size, 21);
  await store.close();
});

test('a streamed upload lands byte-exact; the final name appears only when complete', async (t) => {
  const { dir, store } = fresh(t);
  const final = join(dir, 'cache', 'nar', 'big.nar');
  let checkedMidway = false;
  async function* source() {
    let n = 0;
    for await (const c of patternStream(3_000_000, 'local')) {
      yield c as Buffer;
      if (++n === 10) {
        assert.equal(existsSync(final), false, 'not visible mid-write');
        const pending = await collect(store.listMultipartUploads());
        assert.deepEqual(
          pending.map((p) => p.key),
          ['nar/big.nar'],
        );
        assert.deepEqual(await collect(store.list('')), [], 'temp files are not listed');
        checkedMidway = true;
      }
    }
  }
  const progress: number[] = [];
  const r = await store.upload('nar/big.nar', source(), { onProgress: (n) => progress.push(n) });
  assert.ok(checkedMidway);
  assert.deepEqual(r, { size: 3_000_000, parts: 1, multipart: false });
  assert.equal(progress.at(-1), 3_000_000);
  assert.equal(
    await sha256OfStream(createReadStream(final)),
    await patternSha256(3_000_000, 'local'),
  );
  assert.deepEqual(allFiles(join(dir, 'cache')), ['big.nar'], 'no temp file left');
});

test('a write that fails midway leaves no partial file and keeps the old one', async (t) => {
  const { dir, store } = fresh(t);
  await store.put('x.narinfo', 'old contents');
  const broken = new Error('source broke');
  async function* source() {
    yield Buffer.from('new contents, part one; ');
    yield Buffer.alloc(100_000, 1);
    throw broken;
  }
  await assert.rejects(store.upload('x.narinfo', source()), (e) => e === broken);
  assert.equal(readFileSync(join(dir, 'cache', 'x.narinfo'), 'utf8'), 'old contents');
  assert.deepEqual(allFiles(join(dir, 'cache')), ['x.narinfo'], 'temp file removed');

  async function* fresh2() {
    yield Buffer.from('partial');
    throw broken;
  }
  await assert.rejects(store.upload('nar/new.nar', fresh2()), (e) => e === broken);
  assert.equal(existsSync(join(dir, 'cache', 'nar', 'new.nar')), false);
  assert.deepEqual(await collect(store.listMultipartUploads()), []);
});

test('an aborted upload is STORAGE_ABORTED and leaves nothing', async (t) => {
  const { dir, store } = fresh(t);
  const ctrl = new AbortController();
  const source = patternStream(50_000_000, 'abort-local');
  let seen = 0;
  const r = store.upload('nar/a.nar', source, {
    signal: ctrl.signal,
    onProgress: (n) => {
      seen = n;
      if (n > 1_000_000) ctrl.abort();
    },
  });
  await assert.rejects(r, (e) => isLoftError(e, 'STORAGE_ABORTED'));
  assert.ok(seen < 50_000_000);
  assert.ok(source.destroyed);
  assert.equal(existsSync(join(dir, 'cache', 'nar', 'a.nar')), false);
  assert.deepEqual(allFiles(join(dir, 'cache')), []);
});

test('list: by prefix, recursive or top level only, with sizes and dates', async (t) => {
  const { store } = fresh(t);
  await store.put('nix-cache-info', 'a');
  await store.put('0c7s6kmgd4x8ljy9vhbkwx0r6vp4dq8z.narinfo', 'bb');
  await store.put('0c7s6kmgd4x8ljy9vhbkwx0r6vp4dq8z.ls', 'ccc');
  await store.put('nar/1.nar.zst', 'dddd');
  await store.put('nar/2.nar.zst', 'eeeee');
  await store.put('log/x/y', 'f');
  const keys = async (prefix: string, recursive?: boolean) =>
    (await collect(store.list(prefix, { recursive }))).map((o) => o.key).sort();
  assert.deepEqual(await keys(''), [
    '0c7s6kmgd4x8ljy9vhbkwx0r6vp4dq8z.ls',
    '0c7s6kmgd4x8ljy9vhbkwx0r6vp4dq8z.narinfo',
    'log/x/y',
    'nar/1.nar.zst',
    'nar/2.nar.zst',
    'nix-cache-info',
  ]);
  assert.deepEqual(await keys('', false), [
    '0c7s6kmgd4x8ljy9vhbkwx0r6vp4dq8z.ls',
    '0c7s6kmgd4x8ljy9vhbkwx0r6vp4dq8z.narinfo',
    'nix-cache-info',
  ]);
  assert.deepEqual(await keys('nar/'), ['nar/1.nar.zst', 'nar/2.nar.zst']);
  assert.deepEqual(await keys('nar/2'), ['nar/2.nar.zst']);
  assert.deepEqual(await keys('0c7'), [
    '0c7s6kmgd4x8ljy9vhbkwx0r6vp4dq8z.ls',
    '0c7s6kmgd4x8ljy9vhbkwx0r6vp4dq8z.narinfo',
  ]);
  assert.deepEqual(await keys('missing/'), []);
  const sizes = Object.fromEntries((await collect(store.list('nar/'))).map((o) => [o.key, o.size]));
  assert.deepEqual(sizes, { 'nar/1.nar.zst': 4, 'nar/2.nar.zst': 5 });
});

test('deleteMany ignores missing keys; copy copies the bytes and a self-copy refreshes the date', async (t) => {
  const { dir, store } = fresh(t);
  await store.put('a', '1');
  await store.put('b', '2');
  await store.deleteMany(['a', 'b', 'never-there', 'a']);
  assert.deepEqual(allFiles(join(dir, 'cache')), []);

  await store.put('k.narinfo', 'narinfo text');
  const path = join(dir, 'cache', 'k.narinfo');
  utimesSync(path, new Date('2020-01-01'), new Date('2020-01-01'));
  await store.copy('k.narinfo', 'k.narinfo', { contentType: 'text/x-nix-narinfo' });
  assert.ok(statSync(path).mtime.getFullYear() > 2020, 'mtime refreshed');
  assert.equal(readFileSync(path, 'utf8'), 'narinfo text');
  await store.copy('k.narinfo', 'copies/k2.narinfo');
  assert.equal(await store.get('copies/k2.narinfo').then(String), 'narinfo text');
});

test('stale temp files from a crash are listed as pending uploads and can be removed', async (t) => {
  const { dir, store } = fresh(t);
  await store.check();
  mkdirSync(join(dir, 'cache', 'nar'));
  const stale = `${TEMP_PREFIX}0123456789abcdef-dead.nar.zst`;
  writeFileSync(join(dir, 'cache', 'nar', stale), 'half a NAR');
  writeFileSync(join(dir, 'cache', 'not-ours.tmp'), 'left alone');
  const pending = await collect(store.listMultipartUploads());
  assert.equal(pending.length, 1);
  assert.equal(pending[0]!.key, 'nar/dead.nar.zst');
  assert.equal(pending[0]!.uploadId, `nar/${stale}`);
  assert.ok(pending[0]!.initiated instanceof Date);
  assert.deepEqual(await collect(store.listMultipartUploads('nar/')), pending);
  assert.deepEqual(await collect(store.listMultipartUploads('x')), []);
  await store.abortMultipartUpload(pending[0]!.key, pending[0]!.uploadId);
  await store.abortMultipartUpload(pending[0]!.key, pending[0]!.uploadId); // already gone: fine
  assert.deepEqual(allFiles(join(dir, 'cache')).sort(), ['not-ours.tmp']);
  // Only temp files can be "aborted": never a real object.
  await assert.rejects(store.abortMultipartUpload('not-ours.tmp', 'not-ours.tmp'), (e) =>
    isLoftError(e, 'LOCAL_DIR_UNUSABLE'),
  );
  assert.ok(existsSync(join(dir, 'cache', 'not-ours.tmp')));
});

test('keys cannot escape the directory or use the temp-file prefix', async (t) => {
  const { store } = fresh(t);
  await assert.rejects(
    async () => store.put('../escape', 'x'),
    (e) => isLoftError(e, 'STORAGE_INVALID_KEY'),
  );
  await assert.rejects(
    async () => store.get('/etc/passwd'),
    (e) => isLoftError(e, 'STORAGE_INVALID_KEY'),
  );
  await assert.rejects(
    async () => store.put(`nar/${TEMP_PREFIX}x`, 'x'),
    (e) => isLoftError(e, 'LOCAL_DIR_UNUSABLE'),
  );
});

test('a directory that cannot be used gives LOCAL_DIR_UNUSABLE with the path', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'loft-localdir-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'file'), '');
  const store = createLocalDirStore({ dir: join(dir, 'file') });
  await assert.rejects(
    store.check(),
    (e) => isLoftError(e, 'LOCAL_DIR_UNUSABLE') && e.message.includes(join(dir, 'file')),
  );
  const noCreate = createLocalDirStore({ dir: join(dir, 'missing'), create: false });
  await assert.rejects(
    noCreate.put('a', 'b'),
    (e) => isLoftError(e, 'LOCAL_DIR_UNUSABLE') && /create the directory/.test(e.hint ?? ''),
  );
});

test('copy of a missing object rejects with STORAGE_NO_SUCH_KEY, like S3', async (t) => {
  const { store } = fresh(t);
  await assert.rejects(store.copy('nope.narinfo', 'nope.narinfo'), (e) =>
    isLoftError(e, 'STORAGE_NO_SUCH_KEY'),
  );
  await store.put('x.narinfo', 'StorePath: x\n');
  await store.copy('x.narinfo', 'x.narinfo');
  assert.equal((await store.get('x.narinfo'))?.toString(), 'StorePath: x\n');
});

test('a copy whose write fails before reading closes the source file', async (t) => {
  const { dir, store } = fresh(t);
  await store.put('x.narinfo', 'StorePath: x\n');
  // `blocked` is a file, so the copy cannot make its directory.
  writeFileSync(join(dir, 'cache', 'blocked'), '');
  const openFds = () => readdirSync('/proc/self/fd').length;
  const before = openFds();
  for (let i = 0; i < 20; i++) {
    await assert.rejects(store.copy('x.narinfo', 'blocked/x.narinfo'));
  }
  await new Promise((r) => setImmediate(r)); // destroy() closes on the next turn
  assert.ok(openFds() < before + 5, `file descriptors leaked: ${before} -> ${openFds()}`);
});
