/**
 * Our NAR encoder against `nix-store --dump` (Nix 2.8) on trees built to hit every rule:
 * byte-order sorting, odd names, empty things, executables, symlinks, depth, many files, and
 * a 200 MB file compared by streaming hashes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync,
  mkdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  openSync,
  writeSync,
  closeSync,
} from 'node:fs';
import { createServer, type Server } from 'node:net';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { nixStoreDump, runNix } from '../../support/nix.js';
import { NarParser, parseNar } from '../../../src/nix/nar-parse.js';
import { Hash } from '../../../src/nix/hash.js';
import { narListing } from '../../../src/nix/nar-listing.js';
import { NarUnsupportedFileError } from '../../../src/nix/errors.js';
import { createFsNarSource, dumpPath } from '../../../src/store/nar-fs.js';
import { hashChunks, hashNixDump, ourNar, tempDir } from './helpers.js';

let work: string;
let tree: string;

/** Names chosen so byte order and UTF-16 order disagree, plus non-UTF-8 bytes. */
const oddNames: Buffer[] = [
  Buffer.from('\uff5e'), // EF BD 9E: after U+10000 in UTF-16, before it in bytes
  Buffer.from('\u{10000}'), // F0 90 80 80
  Buffer.from('\ue000'), // EE 80 80 (private use)
  Buffer.from('\u{1f600}'),
  Buffer.from([0xff, 0x66]), // not UTF-8
  Buffer.from([0xc3, 0x28]), // an invalid UTF-8 sequence
  Buffer.from('Zebra'),
  Buffer.from('apple'),
];

before(() => {
  work = tempDir('nar-dump');
  tree = join(work, 'tree');
  mkdirSync(tree);
  const at = (...p: string[]) => join(tree, ...p);
  writeFileSync(at('plain'), 'hello\n');
  writeFileSync(at('empty-file'), '');
  writeFileSync(at('exec.sh'), '#!/bin/sh\necho hi\n');
  chmodSync(at('exec.sh'), 0o755);
  writeFileSync(at('group-x-only'), 'x');
  chmodSync(at('group-x-only'), 0o654); // executable for group only: not executable in a NAR
  writeFileSync(at('owner-x-only'), 'x');
  chmodSync(at('owner-x-only'), 0o700);
  mkdirSync(at('empty-dir'));
  writeFileSync(at('with space'), 'space');
  writeFileSync(at('new\nline'), 'newline');
  writeFileSync(at('tab\tand "quote" \\'), 'tab');
  mkdirSync(at('odd'));
  for (const n of oddNames) writeFileSync(Buffer.concat([Buffer.from(at('odd') + '/'), n]), n);
  symlinkSync('/nonexistent/dangling/target', at('dangling'));
  symlinkSync('odd', at('to-dir'));
  symlinkSync('../plain', at('odd-parent-link'));
  mkdirSync(at('links'));
  symlinkSync('.', at('links', 'self'));
  let deep = at('deep');
  for (let i = 0; i < 60; i++) deep = join(deep, `d${i}`);
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, 'leaf'), 'bottom');
  mkdirSync(at('many'));
  for (let i = 0; i < 3000; i++) {
    const sub = at('many', `g${i % 30}`);
    if (i < 30) mkdirSync(sub);
    writeFileSync(join(sub, `f${i}`), 'x'.repeat((i * 37) % 2000));
  }
  writeFileSync(at('medium.bin'), randomBytes(3 * 1024 * 1024 + 5));
});

after(() => rmSync(work, { recursive: true, force: true }));

test('a tree of every kind of entry is byte-identical to nix-store --dump', async () => {
  const ours = await ourNar(tree);
  const theirs = await nixStoreDump(tree);
  assert.equal(ours.length, theirs.length);
  assert.ok(ours.equals(theirs), 'NAR bytes differ');
  // Sanity: the tree really holds what the test claims.
  let files = 0;
  let execs = 0;
  let links = 0;
  const names: Buffer[] = [];
  parseNar(ours, {
    visitor: {
      file: (p, i) => {
        files++;
        if (i.executable) execs++;
        if (p.length === 2 && p[0]!.toString() === 'odd') names.push(p[1]!);
      },
      symlink: () => links++,
    },
  });
  assert.ok(files > 3000);
  assert.equal(execs, 2);
  assert.equal(links, 4);
  assert.deepEqual(names, [...oddNames].sort(Buffer.compare));
  assert.notDeepEqual(
    names.map((b) => b.toString()),
    names.map((b) => b.toString()).sort(),
    'the tree has names whose UTF-16 order differs from byte order',
  );
});

test('after nix-store --add, our narHash equals nix-store -q --hash and our NAR of the store path equals Nix', async () => {
  const storePath = (await runNix('nix-store', ['--add', tree])).trim();
  const narHash = (await runNix('nix-store', ['-q', '--hash', storePath])).trim();
  const ours = await ourNar(tree);
  assert.equal(Hash.of('sha256', ours).toNix32String(), narHash);
  const ofStorePath = await ourNar(storePath);
  assert.ok(ofStorePath.equals(ours));
  assert.ok(ofStorePath.equals(await nixStoreDump(storePath)));
  const size = (await runNix('nix-store', ['-q', '--size', storePath])).trim();
  assert.equal(String(ours.length), size);
});

test('fully asynchronous I/O (sync: false) gives the same bytes', async () => {
  const parts: Buffer[] = [];
  for await (const c of dumpPath(tree, { sync: false })) parts.push(c);
  assert.ok(Buffer.concat(parts).equals(await nixStoreDump(tree)));
});

test('reused read buffers (as the packer reads) give the same bytes when each chunk is used at once', async () => {
  const dir = join(work, 'reuse');
  mkdirSync(dir);
  for (const size of [0, 1, 31, 32, 33, 100, 1000, 5000, 20_000]) {
    writeFileSync(join(dir, `f${size}`), randomBytes(size));
  }
  // Every file through readFile in 32-byte reads, passed on as views (chunks of 64 take
  // pieces of 16 and more as they are), so the reused buffers really reach the consumer.
  const opts = { reuseBuffers: true, readSize: 32, smallFileSize: 0, chunkSize: 64 };
  const parts: Buffer[] = [];
  const buffers = new Set<ArrayBufferLike>();
  let views = 0;
  for await (const c of dumpPath(dir, opts)) {
    if (c.length === 32) {
      buffers.add(c.buffer);
      views++;
    }
    parts.push(Buffer.from(c)); // used (copied) before the next is asked for
  }
  assert.ok(Buffer.concat(parts).equals(await nixStoreDump(dir)));
  assert.ok(views > 500, `full reads seen: ${views}`);
  assert.ok(buffers.size <= 2, `${buffers.size} buffers for ${views} reads: not reused`);
});

test('into a buffer (as the packer gathers a NAR), sync and async reads give nix-store --dump bytes, in place or spilling over', async () => {
  const dir = join(work, 'into');
  mkdirSync(dir);
  for (const size of [10, 70_000, 300_000, 900_000]) {
    writeFileSync(join(dir, `f${size}`), randomBytes(size));
  }
  const theirs = await nixStoreDump(dir);
  for (const sync of [true, false]) {
    for (const size of [theirs.length, 500_000]) {
      const into = Buffer.alloc(size);
      const parts: Buffer[] = [];
      for await (const c of dumpPath(dir, { sync, into })) parts.push(c);
      const label = `sync ${sync}, into ${size}`;
      assert.ok(Buffer.concat(parts).equals(theirs), label);
      assert.ok(into.equals(theirs.subarray(0, size)), label);
    }
  }
});

test('readFileInto counts one byte past the buffer when the file is longer, and the file length when it is shorter', async () => {
  const path = Buffer.from(join(work, 'into-count'));
  writeFileSync(path, randomBytes(1000));
  for (const sync of [true, false]) {
    const source = createFsNarSource({ sync });
    assert.equal(await source.readFileInto!(path, Buffer.alloc(999)), 1000, `sync ${sync}`);
    assert.equal(await source.readFileInto!(path, Buffer.alloc(1000)), 1000, `sync ${sync}`);
    assert.equal(await source.readFileInto!(path, Buffer.alloc(1001)), 1000, `sync ${sync}`);
  }
});

test('synchronous small-file reads still give the event loop regular turns', async () => {
  const flat = join(work, 'flat');
  mkdirSync(flat);
  for (let i = 0; i < 4000; i++) writeFileSync(join(flat, `f${i}`), 'y'.repeat(i % 500));
  // Count event-loop turns after the first chunk: by then the only readdir is done, so any
  // turn comes from the source yielding between synchronous reads.
  let firstChunk = false;
  let turnsWhileEncoding = 0;
  let running = true;
  const tick = () => {
    if (firstChunk) turnsWhileEncoding++;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  let size = 0;
  let chunks = 0;
  for await (const c of dumpPath(flat, { maxBlockMs: 1, chunkSize: 64 * 1024 })) {
    size += c.length;
    chunks++;
    firstChunk = true;
  }
  running = false;
  assert.ok(size > 4000 * 100 && chunks > 8);
  assert.ok(turnsWhileEncoding >= 5, `${turnsWhileEncoding} event-loop turns while encoding`);
});

test('single files and symlinks as the root match too', async () => {
  for (const p of ['plain', 'empty-file', 'exec.sh', 'dangling', 'to-dir', 'empty-dir']) {
    const full = join(tree, p);
    assert.ok((await ourNar(full)).equals(await nixStoreDump(full)), p);
  }
});

test('our parser reads Nix NARs, stops at their exact end, and the listing matches the tree', async () => {
  const theirs = await nixStoreDump(tree);
  const p = new NarParser();
  const withTrailer = Buffer.concat([theirs, Buffer.from('next frame...')]);
  // Fed in awkward pieces.
  let used = 0;
  for (let i = 0; i < withTrailer.length; i += 4093)
    used += p.push(withTrailer.subarray(i, i + 4093));
  assert.equal(used, theirs.length);
  assert.ok(p.done);
  const listing = JSON.parse(narListing(theirs).toString('latin1'));
  assert.equal(listing.root.entries['exec.sh'].executable, true);
  const off = listing.root.entries.plain.narOffset as number;
  assert.equal(theirs.subarray(off, off + 6).toString(), 'hello\n');
});

test('sockets and fifos: Nix refuses them and so do we, naming the path', async () => {
  const dir = join(work, 'special');
  mkdirSync(dir);
  writeFileSync(join(dir, 'fine'), 'ok');
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const sockDir = join(work, 'special-sock');
  mkdirSync(sockDir);
  const sock = join(sockDir, 'sock');
  const server: Server = createServer();
  await new Promise<void>((r) => server.listen(sock, r));
  try {
    for (const [d, bad, re] of [
      [dir, fifo, /named pipe/],
      [sockDir, sock, /socket/],
    ] as const) {
      await assert.rejects(nixStoreDump(d), /unsupported type/);
      await assert.rejects(
        ourNar(d),
        (e: Error) => e instanceof NarUnsupportedFileError && e.path === bad && re.test(e.message),
      );
    }
  } finally {
    await new Promise((r) => server.close(r));
  }
});

test('a 200 MB file streams: same sha256 and size as nix-store --dump, no chunk over 1 MiB', async () => {
  const dir = join(work, 'big');
  mkdirSync(dir);
  const file = join(dir, 'big.bin');
  const fd = openSync(file, 'w', 0o755);
  const block = randomBytes(1 << 20);
  const size = 200 * (1 << 20) + 12345;
  try {
    for (let written = 0, i = 0; written < size; i++) {
      block.writeUInt32LE(i, 0); // vary the blocks
      const n = Math.min(block.length, size - written);
      writeSync(fd, block, 0, n);
      written += n;
    }
  } finally {
    closeSync(fd);
  }
  writeFileSync(join(dir, 'small'), 'next to the big one');

  const rssBefore = process.memoryUsage().rss;
  // Parse our stream while hashing it, so the big NAR is also validated on the way.
  const parser = new NarParser();
  async function* checked() {
    for await (const c of dumpPath(dir)) {
      assert.equal(parser.push(c), c.length);
      yield c;
    }
  }
  const ours = await hashChunks(checked());
  parser.end();
  const rssGrowth = process.memoryUsage().rss - rssBefore;
  const theirs = await hashNixDump(dir);
  assert.equal(ours.size, theirs.size);
  assert.ok(ours.sha256.equals(theirs.sha256), 'narHash differs');
  assert.ok(ours.maxChunk <= 1 << 20, `largest chunk ${ours.maxChunk}`);
  assert.ok(rssGrowth < 100 * (1 << 20), `RSS grew by ${rssGrowth} bytes while encoding`);
  rmSync(file);
});
