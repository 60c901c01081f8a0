/**
 * Hanging up on a daemon socket: the CLI's last step. A listener that never closes its side
 * stands for a daemon whose worker is slow to exit; end() must not wait for it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectSocket } from '../../../src/daemon/transport.js';

test('end() on a socket sends what was written and its end, then closes without waiting for the daemon to hang up', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loft-end-'));
  const path = join(dir, 'socket');
  let accepted: (s: Socket) => void;
  const peer = new Promise<Socket>((r) => (accepted = r));
  // allowHalfOpen: the listener keeps its side open after our end, as a busy daemon would.
  const server = createServer({ allowHalfOpen: true }, (s) => accepted(s));
  await new Promise<void>((r) => server.listen(path, r));
  try {
    const t = await connectSocket(path);
    const theirs = await peer;
    let received = '';
    theirs.setEncoding('utf8').on('data', (s: string) => (received += s));
    const sawEnd = new Promise<void>((r) => theirs.once('end', r));

    t.writable.write('last words');
    const started = performance.now();
    await t.end();
    const took = performance.now() - started;
    // The old end() waited for the peer's close, i.e. its 2 s fallback here.
    assert.ok(took < 1000, `end() took ${Math.round(took)} ms`);
    await sawEnd;
    assert.equal(received, 'last words');
    assert.equal(theirs.destroyed, false, 'the listener never hung up');
    // No handle is left to keep the process alive.
    assert.equal(t.readable.destroyed, true);
    assert.equal(await t.gone, undefined);
  } finally {
    // server.close() waits for open connections: hang up the listener's side first.
    void peer.then((s) => s.destroy());
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  }
});
