import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PathInfo } from '../../../src/store/path-info.js';
import { planPush, summarizePlan, type PlanLookups } from '../../../src/upload/plan.js';

// Valid store paths: 32 nix32 chars of hash part.
const h = (c: string) => c.repeat(32);
const p = (c: string, name: string) => `/nix/store/${h(c)}-${name}`;

function info(path: string, refs: string[] = [], sigs: string[] = [], narSize = 100): PathInfo {
  return {
    path,
    deriver: undefined,
    narHash: `sha256:${'0'.repeat(52)}`,
    narSize,
    references: [...refs].sort(),
    registrationTime: 0,
    ultimate: true,
    sigs,
    ca: undefined,
  };
}

const NOW = new Date('2026-06-01T00:00:00Z');
const daysAgo = (d: number) => new Date(NOW.getTime() - d * 86_400_000);

/**
 * Lookups over explicit tables (hash part -> narinfo time), recording every remote
 * question asked. A bare list means "recorded just now".
 */
function lookups(
  index: string[] | Record<string, Date>,
  remote: string[] | Record<string, Date>,
): PlanLookups & { asked: string[][] } {
  const table = (t: string[] | Record<string, Date>) =>
    new Map(Array.isArray(t) ? t.map((x) => [x, NOW]) : Object.entries(t));
  const idx = table(index);
  const rem = table(remote);
  const asked: string[][] = [];
  return {
    asked,
    knownPresent: (hps) =>
      new Map(hps.filter((x) => idx.has(x)).map((x) => [x, { narinfoTime: idx.get(x)! }])),
    remotePresent: async (hps) => {
      asked.push([...hps].sort());
      return new Map(hps.filter((x) => rem.has(x)).map((x) => [x, { lastModified: rem.get(x)! }]));
    },
  };
}

const glibc = info(p('a', 'glibc'), [], ['cache.nixos.org-1:xxx']);
const lib = info(p('b', 'lib'), [glibc.path]);
const tool = info(p('c', 'tool'), [lib.path, glibc.path, p('c', 'tool')], [], 5000);
const closure = [glibc, lib, tool];

test('upstream-signed paths are left to upstream and never looked up', async () => {
  const l = lookups([], []);
  const plan = await planPush(closure, l, {
    storeDir: '/nix/store',
    skipSignedByKeys: ['cache.nixos.org-1'],
  });
  assert.deepEqual(
    plan.upstream.map((i) => i.path),
    [glibc.path],
  );
  assert.deepEqual(
    plan.toUpload.map((i) => i.path),
    [lib.path, tool.path],
  );
  assert.ok(!l.asked.flat().includes(h('a')));
});

test('a signature by a key not in skip_signed_by_keys does not make a path upstream', async () => {
  const plan = await planPush(closure, lookups([], []), {
    storeDir: '/nix/store',
    skipSignedByKeys: ['other-1'],
  });
  assert.deepEqual(plan.upstream, []);
  assert.equal(plan.toUpload.length, 3);
});

test('index-known paths skip the remote check unless an upload references them', async () => {
  // tool is known in the index and nothing uploaded references it: no remote question.
  const l = lookups([h('c')], []);
  const plan = await planPush(closure, l, {
    storeDir: '/nix/store',
    skipSignedByKeys: ['cache.nixos.org-1'],
  });
  assert.deepEqual(
    plan.toUpload.map((i) => i.path),
    [lib.path],
  );
  assert.deepEqual(
    plan.alreadyCached.map((c) => [c.info.path, c.source]),
    [[tool.path, 'index']],
  );
  assert.deepEqual(l.asked, [[h('b')]]);
});

test('a stale index entry referenced by an upload is re-checked and uploaded when gone', async () => {
  // lib is in the index but was pruned remotely; tool must be uploaded, so lib is checked.
  const l = lookups([h('b')], []);
  const plan = await planPush(closure, l, {
    storeDir: '/nix/store',
    skipSignedByKeys: ['cache.nixos.org-1'],
  });
  assert.deepEqual(
    plan.toUpload.map((i) => i.path),
    [lib.path, tool.path],
    'dependencies first',
  );
  assert.deepEqual(plan.alreadyCached, []);
  assert.deepEqual(l.asked, [[h('c')], [h('b')]]);
});

test('a referenced index entry confirmed remotely stays cached, with its age', async () => {
  const l = lookups([h('b')], [h('b')]);
  const plan = await planPush(closure, l, {
    storeDir: '/nix/store',
    skipSignedByKeys: ['cache.nixos.org-1'],
  });
  assert.deepEqual(
    plan.toUpload.map((i) => i.path),
    [tool.path],
  );
  assert.deepEqual(
    plan.alreadyCached.map((c) => [c.source, c.lastModified]),
    [['remote', NOW]],
  );
});

test('ignoreIndex checks every candidate remotely', async () => {
  const l = lookups([h('b'), h('c')], [h('c')]);
  const plan = await planPush(closure, l, {
    storeDir: '/nix/store',
    skipSignedByKeys: [],
    ignoreIndex: true,
  });
  assert.deepEqual(l.asked[0], [h('a'), h('b'), h('c')]);
  assert.deepEqual(
    plan.toUpload.map((i) => i.path),
    [glibc.path, lib.path],
  );
});

test('a failing remote check fails the plan instead of counting as missing', async () => {
  const l: PlanLookups = {
    knownPresent: () => new Map(),
    remotePresent: () => Promise.reject(new Error('503 from the cache')),
  };
  await assert.rejects(
    planPush(closure, l, { storeDir: '/nix/store', skipSignedByKeys: [] }),
    /503/,
  );
});

test('the summary counts paths and NAR bytes per category', async () => {
  const plan = await planPush(closure, lookups([], [h('b')]), {
    storeDir: '/nix/store',
    skipSignedByKeys: ['cache.nixos.org-1'],
  });
  assert.deepEqual(summarizePlan(plan), {
    toUpload: { paths: 1, narBytes: 5000 },
    alreadyCached: { paths: 1, narBytes: 100 },
    upstream: { paths: 1, narBytes: 100 },
    excluded: { paths: 0, narBytes: 0 },
  });
});

test('excluded paths are neither uploaded nor looked up, and counted in the summary', async () => {
  const l = lookups([], []);
  const plan = await planPush(closure, l, {
    storeDir: '/nix/store',
    skipSignedByKeys: ['cache.nixos.org-1'],
    exclude: (path) => path === lib.path || path === glibc.path,
  });
  // glibc is upstream-signed: upstream wins, so each path is counted once.
  assert.deepEqual(
    plan.upstream.map((i) => i.path),
    [glibc.path],
  );
  assert.deepEqual(
    plan.excluded.map((i) => i.path),
    [lib.path],
  );
  assert.deepEqual(
    plan.toUpload.map((i) => i.path),
    [tool.path],
  );
  assert.ok(!l.asked.flat().includes(h('b')), 'an excluded path is not asked about');
  assert.deepEqual(summarizePlan(plan).excluded, { paths: 1, narBytes: 100 });
});

test('refresh-on-use: cached paths past the cutoff are refreshed, younger ones are not', async () => {
  // lib and tool are cached: lib remotely at 20 days old, tool in the index at 1 day old.
  const l = lookups({ [h('c')]: daysAgo(1) }, { [h('b')]: daysAgo(20), [h('c')]: daysAgo(1) });
  const plan = await planPush(closure, l, {
    storeDir: '/nix/store',
    skipSignedByKeys: ['cache.nixos.org-1'],
    refreshBefore: daysAgo(15),
  });
  assert.deepEqual(plan.toUpload, []);
  assert.deepEqual(
    plan.toRefresh.map((c) => c.info.path),
    [lib.path],
  );
});

test('refresh-on-use: an old index entry is confirmed remotely before it is refreshed', async () => {
  // The index says tool is 20 days old; the bucket says another machine refreshed it.
  const refreshedElsewhere = lookups(
    { [h('c')]: daysAgo(20) },
    { [h('b')]: NOW, [h('c')]: daysAgo(2) },
  );
  const plan = await planPush(closure, refreshedElsewhere, {
    storeDir: '/nix/store',
    skipSignedByKeys: ['cache.nixos.org-1'],
    refreshBefore: daysAgo(15),
  });
  assert.deepEqual(refreshedElsewhere.asked, [[h('b')], [h('c')]].sort());
  assert.deepEqual(plan.toRefresh, []);
  assert.deepEqual(
    plan.alreadyCached.map((c) => [c.info.path, c.source]),
    [
      [lib.path, 'remote'],
      [tool.path, 'remote'],
    ],
  );

  // Still old remotely: refresh it.
  const stillOld = lookups({ [h('c')]: daysAgo(20) }, { [h('b')]: NOW, [h('c')]: daysAgo(20) });
  const plan2 = await planPush(closure, stillOld, {
    storeDir: '/nix/store',
    skipSignedByKeys: ['cache.nixos.org-1'],
    refreshBefore: daysAgo(15),
  });
  assert.deepEqual(
    plan2.toRefresh.map((c) => c.info.path),
    [tool.path],
  );
});

test('refresh-on-use: an old index entry that was pruned remotely is uploaded again', async () => {
  const l = lookups({ [h('b')]: daysAgo(20), [h('c')]: daysAgo(20) }, {});
  const plan = await planPush(closure, l, {
    storeDir: '/nix/store',
    skipSignedByKeys: ['cache.nixos.org-1'],
    refreshBefore: daysAgo(15),
  });
  assert.deepEqual(
    plan.toUpload.map((i) => i.path),
    [lib.path, tool.path],
  );
  assert.deepEqual(plan.toRefresh, []);
});

test('without a cutoff nothing is refreshed and old index entries are trusted', async () => {
  const l = lookups({ [h('b')]: daysAgo(400), [h('c')]: daysAgo(400) }, {});
  const plan = await planPush(closure, l, {
    storeDir: '/nix/store',
    skipSignedByKeys: ['cache.nixos.org-1'],
  });
  assert.deepEqual(plan.toRefresh, []);
  assert.deepEqual(l.asked, []);
});
