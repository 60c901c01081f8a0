/**
 * The children Loft runs (xz, `nix-daemon --stdio`) are not in Loft's process group, so a
 * terminal's Ctrl-C (sent to the whole foreground group) reaches Loft alone, which then
 * finishes or stops them itself. Read from /proc: the kernel's word, not ours.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { ProcessCompressStream } from '../../../src/compress/process-stream.js';
import { Slots } from '../../../src/compress/slots.js';
import { spawnStdio } from '../../../src/daemon/transport.js';

/** The process group of a pid (field 5 of /proc/PID/stat, after the parenthesised name). */
function pgrp(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

test('xz runs in a process group of its own, and still ends normally', async () => {
  const s = new ProcessCompressStream({
    method: 'xz',
    command: 'xz',
    args: ['-c', '-1'],
    slots: new Slots(1),
  });
  s.resume();
  s.write(Buffer.from('bytes'));
  while (s.pid === undefined) await new Promise((r) => setTimeout(r, 5));
  assert.notEqual(pgrp(s.pid), pgrp(process.pid));
  assert.equal(pgrp(s.pid), s.pid, 'a group leader');
  const done = once(s, 'end');
  s.end();
  await done;
});

test('the --stdio daemon child runs in a process group of its own, and ends when Loft ends it', async () => {
  // `cat` stands in for `nix-daemon --stdio`: a child speaking over stdin and stdout.
  const t = await spawnStdio(['cat']);
  const pid = Number(/pid (\d+)/.exec(t.endpoint)![1]);
  assert.notEqual(pgrp(pid), pgrp(process.pid));
  await t.end();
  assert.match((await t.gone) ?? '', /exited with status 0/);
});
