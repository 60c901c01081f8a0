/**
 * LocalStore as unprivileged users against the real daemon: a member of `nix-users` works
 * over the socket (and over `nix-daemon --stdio`, which then relays to the socket); a user
 * outside the group gets DAEMON_PERMISSION_DENIED with the group hint. The users are
 * created (system users, no home) if absent. What they run is staged outside the checkout
 * (test/support/other-user.ts), so the checkout may be private.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { requireRoot, stageForOtherUsers } from '../../support/other-user.js';
import { nixBuild, nixRequisites, nixStoreDump, salt } from '../../support/nix.js';

const exec = promisify(execFile);
const MEMBER = 'loft-nixuser';
const OUTSIDER = 'loft-outsider';
const CHILD = 'dist/test/integration/store/unprivileged-child.js';

async function ensureUser(name: string, inGroup: boolean): Promise<void> {
  const exists = await exec('id', ['-u', name]).then(
    () => true,
    () => false,
  );
  if (!exists) {
    await exec('useradd', [
      '--system',
      '--no-create-home',
      '--shell',
      '/usr/sbin/nologin',
      ...(inGroup ? ['--groups', 'nix-users'] : []),
      name,
    ]);
  } else if (inGroup) {
    await exec('usermod', ['-aG', 'nix-users', name]);
  } else {
    await exec('gpasswd', ['-d', name, 'nix-users']).catch(() => {}); // not a member: fine
  }
}

interface ChildResult {
  user: string;
  endpoint?: string;
  closure?: string[];
  narSha256?: string;
  narHash?: string;
  error?: { code?: string; message: string; hint?: string };
}

// The child and the built code it imports, where the other users can read them: the
// checkout may be private (a 0700 clone, /root).
const staged = stageForOtherUsers(['dist/src', CHILD]);
after(() => staged.cleanup());

async function runAs(user: string, transport: string, path: string): Promise<ChildResult> {
  const r = await staged.run(user, CHILD, [transport, path]);
  assert.equal(r.code, 0, `the child as ${user} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as ChildResult;
}

const setup = (async () => {
  requireRoot('the unprivileged-store test');
  await ensureUser(MEMBER, true);
  await ensureUser(OUTSIDER, false);
  const [top] = await nixBuild(
    `let dep = mk "dep" "echo dep > $out"; in mk "top" "echo \${dep} > $out"`,
    salt(),
  );
  return top!;
})();

for (const transport of ['socket', 'auto'] as const) {
  test(`a nix-users member, ${transport}: closure and NAR as root sees them, over the socket`, async () => {
    const top = await setup;
    const r = await runAs(MEMBER, transport, top);
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    assert.equal(r.user, MEMBER);
    assert.equal(r.endpoint, '/nix/var/nix/daemon-socket/socket');
    assert.deepEqual([...r.closure!].sort(), (await nixRequisites([top])).sort());
    assert.equal(
      r.narSha256,
      createHash('sha256')
        .update(await nixStoreDump(top))
        .digest('hex'),
    );
  });
}

test('a nix-users member forcing stdio: Nix 2.8 relays to the socket and fails; the error says so and what to use', async () => {
  // As non-root, `nix-daemon --stdio` does not serve the store but relays to the daemon
  // socket with splice(2), which Nix 2.8 cannot do over the socketpairs Node gives a child.
  const top = await setup;
  const r = await runAs(MEMBER, 'stdio', top);
  assert.equal(r.error?.code, 'DAEMON_REJECTED', JSON.stringify(r));
  assert.match(
    r.error.message,
    /nix-daemon --stdio \(pid \d+\)\) closed the connection during the handshake/,
  );
  assert.match(
    r.error.message,
    /exited with status 1; its stderr: error: splicing data from stdin to daemon socket/,
  );
  assert.match(r.error.hint ?? '', /use the socket transport/);
});

for (const transport of ['socket', 'auto'] as const) {
  test(`a user outside nix-users (${transport}): permission denied, with the group hint`, async () => {
    const top = await setup;
    const r = await runAs(OUTSIDER, transport, top);
    assert.ok(r.error, 'must fail');
    assert.equal(r.error.code, 'DAEMON_PERMISSION_DENIED');
    assert.match(
      r.error.message,
      /permission denied connecting to the nix-daemon socket \/nix\/var\/nix\/daemon-socket\/socket as user loft-outsider/,
    );
    assert.match(r.error.hint ?? '', /nix-users/);
    assert.match(r.error.hint ?? '', /usermod -aG nix-users loft-outsider/);
    assert.match(r.error.hint ?? '', /allowed-users/);
  });
}
