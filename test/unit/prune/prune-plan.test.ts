import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { planPrune, narInfoDeletions, type PrunePlan } from '../../../src/prune/plan.js';
import { DAY_MS, policyFromSettings } from '../../../src/prune/policy.js';
import type { ListedObject } from '../../../src/storage/port.js';
import type { NarInfoRead } from '../../../src/prune/narinfo-read.js';
import { NOW, POLICY, bucket, daysAgo, hoursAgo, hp, narKeyOf } from './fixtures.js';

const deletedKeys = (plan: PrunePlan) =>
  new Set([
    ...narInfoDeletions(plan).flatMap((n) => (n.listing ? [n.key, n.listing.key] : [n.key])),
    ...plan.releasedNars.map((o) => o.key),
    ...plan.orphanNars.map((o) => o.key),
    ...plan.orphanListings.map((o) => o.key),
  ]);
const deletedPaths = (plan: PrunePlan) => new Set(narInfoDeletions(plan).map((n) => n.hashPart));

test('an expired path goes; a live path keeps its whole closure, however old', () => {
  // 1 (live) -> 2 (old) -> 3 (old); 4 (old) -> 2; 5 (old, alone)
  const input = bucket({
    1: { refs: [2], age: 1, listing: 100 },
    2: { refs: [3, 2], age: 300 },
    3: { age: 300 },
    4: { refs: [2], age: 40, listing: 70 },
    5: { age: 31 },
  });
  const plan = planPrune(input);
  assert.deepEqual(deletedPaths(plan), new Set([hp(4), hp(5)]));
  for (const n of narInfoDeletions(plan)) assert.equal(n.reason, 'expired');
  const keys = deletedKeys(plan);
  assert.ok(keys.has(`${hp(4)}.ls`), 'a listing goes with its narinfo');
  assert.ok(!keys.has(`${hp(1)}.ls`));
  assert.deepEqual(
    plan.releasedNars.map((o) => o.key),
    [narKeyOf(4), narKeyOf(5)].sort(),
  );
  assert.equal(plan.kept.narInfos, 3);
  assert.equal(plan.kept.live, 1);
  assert.equal(plan.deleting.expired.count, 2);
  assert.equal(plan.deleting.expired.bytes, 1000);
  assert.equal(plan.deleting.listings.bytes, 70);
  assert.equal(plan.deleting.releasedNars.bytes, 20_000);
  assert.equal(plan.before.bytes, 5 * 500 + 170 + 5 * 10_000);
  assert.equal(plan.bytesAfter, plan.before.bytes - 1000 - 70 - 20_000);
});

test('the retention boundary: exactly retention old is live, a second more is not', () => {
  const input = bucket({ 1: { age: 30 }, 2: { age: 30 + 1 / 86_400 } });
  const plan = planPrune(input);
  assert.deepEqual(deletedPaths(plan), new Set([hp(2)]));
});

test('referrers are deleted before what they reference, in separate layers', () => {
  // a chain 1 -> 2 -> 3 -> 4, all expired, plus 5 -> 3
  const input = bucket({
    1: { refs: [2], age: 90 },
    2: { refs: [3], age: 90 },
    3: { refs: [4], age: 90 },
    4: { age: 90 },
    5: { refs: [3], age: 90 },
  });
  const plan = planPrune(input);
  assert.deepEqual(
    plan.narInfoLayers.map((l) => l.map((n) => n.hashPart)),
    [[hp(1), hp(5)], [hp(2)], [hp(3)], [hp(4)]],
  );
});

test('nix-cache-info and keys prune does not recognise are never touched', () => {
  const old = daysAgo(1000);
  const odd: ListedObject[] = [
    { key: 'README.txt', size: 10, lastModified: old },
    { key: 'log/abc-foo.drv', size: 10, lastModified: old },
    { key: 'nar/readme.txt', size: 10, lastModified: old },
    { key: 'nar/sub/x.nar.zst', size: 10, lastModified: old },
    { key: 'ABC.narinfo', size: 10, lastModified: old },
    { key: `${hp(7)}.ls.bak`, size: 10, lastModified: old },
    { key: 'realisations/x.doi', size: 10, lastModified: old },
  ];
  const input = bucket({ 1: { age: 900 } }, { objects: odd });
  input.policy.maxSizeBytes = 1; // even a size policy that wants everything gone
  const plan = planPrune(input);
  const keys = deletedKeys(plan);
  assert.ok(keys.has(`${hp(1)}.narinfo`));
  assert.ok(!keys.has('nix-cache-info'));
  for (const o of odd) assert.ok(!keys.has(o.key), `${o.key} untouched`);
  assert.equal(plan.untouched.count, odd.length + 1);
});

test('a narinfo that does not parse is kept, and so is everything it names', () => {
  const input = bucket({
    1: { refs: [2], age: 400, unreadable: true },
    2: { refs: [3], age: 400 },
    3: { age: 400 },
    4: { age: 400 },
  });
  const plan = planPrune(input);
  assert.deepEqual(deletedPaths(plan), new Set([hp(4)]));
  assert.deepEqual(plan.kept.unreadable, [
    { key: `${hp(1)}.narinfo`, problem: 'line 3: blank line' },
  ]);
  assert.ok(plan.warnings.some((w) => w.includes(`${hp(1)}.narinfo`)));
  assert.deepEqual(
    plan.releasedNars.map((o) => o.key),
    [narKeyOf(4)],
    'its NAR and its references NARs stay',
  );
});

test('pinned narinfos (written after the listing began) are kept with their closures', () => {
  const input = bucket({ 1: { refs: [2], age: 400 }, 2: { age: 400 }, 3: { age: 400 } });
  input.pinned = new Set([`${hp(1)}.narinfo`]);
  const plan = planPrune(input);
  assert.deepEqual(deletedPaths(plan), new Set([hp(3)]));
  assert.equal(plan.kept.pinned, 1);
});

test('orphans: NARs and listings without a narinfo go only after the grace period', () => {
  const orphans: ListedObject[] = [
    { key: narKeyOf(100), size: 1000, lastModified: hoursAgo(25) },
    { key: narKeyOf(101), size: 2000, lastModified: hoursAgo(23) },
    { key: `${hp(102)}.ls`, size: 30, lastModified: hoursAgo(48) },
    { key: `${hp(103)}.ls`, size: 40, lastModified: hoursAgo(1) },
  ];
  const plan = planPrune(bucket({ 1: { age: 1 } }, { objects: orphans }));
  assert.deepEqual(
    plan.orphanNars.map((o) => o.key),
    [narKeyOf(100)],
  );
  assert.deepEqual(
    plan.orphanListings.map((o) => o.key),
    [`${hp(102)}.ls`],
  );
  assert.deepEqual(plan.kept.youngOrphans, { count: 2, bytes: 2040 });
  assert.equal(plan.releasedNars.length, 0);
  // With a shorter grace period the young ones go too.
  const short = planPrune(
    bucket({ 1: { age: 1 } }, { objects: orphans, policy: { orphanGraceMs: 3_600_000 / 2 } }),
  );
  assert.equal(short.orphanNars.length, 2);
  assert.equal(short.orphanListings.length, 2);
});

test('a NAR released by this prune goes at once, whatever its age; a shared one stays', () => {
  // 2 is young and deleted by the size policy; 3 shares the NAR of a kept path.
  const input = bucket({
    1: { age: 0.1, narSize: 100 },
    2: { age: 0.5, narSize: 100_000 },
    3: { age: 400, narOf: 1 },
  });
  const released = planPrune({ ...input, released: new Set([narKeyOf(2)]), keepNarInfos: true });
  assert.equal(narInfoDeletions(released).length, 0, 'keepNarInfos deletes no narinfo');
  assert.deepEqual(
    released.releasedNars.map((o) => o.key),
    [],
    'the NAR is still referenced by narinfo 2, which stays in this mode',
  );
  const plan = planPrune(input);
  assert.deepEqual(deletedPaths(plan), new Set([hp(3)]));
  assert.deepEqual(plan.releasedNars, [], "3's NAR is 1's: kept");

  // A released NAR with no narinfo left: no grace period.
  const after = planPrune({
    ...bucket(
      { 1: { age: 0.1 } },
      {
        objects: [{ key: narKeyOf(9), size: 5, lastModified: hoursAgo(1) }],
      },
    ),
    released: new Set([narKeyOf(9)]),
    keepNarInfos: true,
  });
  assert.deepEqual(
    after.releasedNars.map((o) => o.key),
    [narKeyOf(9)],
  );
  assert.equal(after.orphanNars.length, 0);
});

test('a kept narinfo whose URL is not a plain key blocks every NAR deletion', () => {
  const plan = planPrune(
    bucket(
      { 1: { age: 1, badUrl: '../elsewhere/x.nar' }, 2: { age: 400 } },
      { objects: [{ key: narKeyOf(50), size: 1, lastModified: daysAgo(10) }] },
    ),
  );
  assert.deepEqual(deletedPaths(plan), new Set([hp(2)]), 'narinfos still go');
  assert.equal(plan.releasedNars.length + plan.orphanNars.length, 0);
  assert.match(plan.kept.narDeletionBlockedBy ?? '', /elsewhere/);
});

test('stale multipart uploads to cache keys are aborted; young, unknown-age and foreign ones stay', () => {
  const uploads = [
    { key: narKeyOf(1), uploadId: 'old', initiated: hoursAgo(25) },
    { key: narKeyOf(2), uploadId: 'young', initiated: hoursAgo(2) },
    { key: narKeyOf(3), uploadId: 'unknown', initiated: undefined },
    { key: 'backups/db.tar', uploadId: 'foreign', initiated: daysAgo(30) },
    { key: `${hp(4)}.narinfo`, uploadId: 'old-narinfo', initiated: daysAgo(3) },
  ];
  const plan = planPrune(bucket({}, { uploads }));
  assert.deepEqual(
    plan.staleUploads.map((u) => u.uploadId),
    ['old', 'old-narinfo'],
  );
  assert.equal(plan.kept.uploads, 3);
  assert.equal(plan.deleting.staleUploads, 2);
});

test('size policy: newest closures kept whole until the target; older ones go', () => {
  // Four closures refreshed 1..4 days ago, each a root (1000 B NAR) over a private dep
  // (1000 B NAR); roots 10 and 20 share dep 5. narinfos 100 B each.
  const spec = (age: number, refs: number[] = []) => ({
    age,
    refs,
    narSize: 1000,
    narInfoSize: 100,
  });
  const input = bucket({
    10: spec(1, [5]),
    20: spec(2, [5]),
    5: spec(20),
    30: spec(3, [6]),
    6: spec(20),
    40: spec(4, [7]),
    7: spec(20),
  });
  // Everything is within retention: 7 paths x 1100 B = 7700 B.
  input.policy = { ...POLICY, maxSizeBytes: 5000, targetPercentage: 80 }; // target 4000
  const plan = planPrune(input);
  assert.ok(plan.size?.triggered);
  assert.equal(plan.size?.bytesAfterAge, 7700);
  // 10+5 (2200), then 20 (1100, dep shared) = 3300; 30+6 would make 5500 > 4000: stop.
  assert.deepEqual(deletedPaths(plan), new Set([hp(30), hp(6), hp(40), hp(7)]));
  for (const n of narInfoDeletions(plan)) assert.equal(n.reason, 'size');
  assert.equal(plan.bytesAfter, 3300);
  assert.deepEqual(plan.size?.cutoff, daysAgo(3));

  // Under the maximum: nothing is evicted (the target only matters once triggered).
  input.policy = { ...POLICY, maxSizeBytes: 7700, targetPercentage: 50 };
  assert.equal(narInfoDeletions(planPrune(input)).length, 0);
});

test('size policy never evicts closures younger than the grace period', () => {
  const spec = (age: number, refs: number[] = []) => ({ age, refs, narSize: 1000, narInfoSize: 0 });
  // Roots 1..4 days old over private deps 20 days old; grace 2.5 days.
  const input = bucket({
    10: spec(1, [5]),
    5: spec(20),
    20: spec(2, [6]),
    6: spec(20),
    30: spec(3, [7]),
    7: spec(20),
    40: spec(4),
  });
  input.policy = {
    ...POLICY,
    maxSizeBytes: 2000,
    targetPercentage: 50,
    graceMs: 2.5 * DAY_MS,
  };
  const plan = planPrune(input);
  // 10 and 20 (with their old deps, in their closures) are protected: 4000 B > target 1000.
  assert.deepEqual(deletedPaths(plan), new Set([hp(30), hp(7), hp(40)]));
  assert.equal(plan.size?.protectedBytes, 4000);
  assert.equal(plan.bytesAfter, 4000);
  assert.ok(plan.warnings.some((w) => /stays over the size target: 4000 bytes/.test(w)));
  // The default grace period is ten minutes, and 0 is allowed.
  const settings = { retentionDays: 30, maxSizeBytes: undefined, targetPercentage: 100 };
  assert.equal(policyFromSettings(settings).graceMs, 10 * 60_000);
  assert.equal(policyFromSettings({ ...settings, graceMinutes: 0 }).graceMs, 0);
});

test('size policy counts what must stay first, and may then delete every other closure', () => {
  const input = bucket({
    1: { age: 1, unreadable: true, narSize: 5000 },
    2: { age: 0, narSize: 5000 },
  });
  input.policy = { ...POLICY, maxSizeBytes: 6000, targetPercentage: 90 };
  const plan = planPrune(input);
  assert.deepEqual(deletedPaths(plan), new Set([hp(2)]), 'the unreadable one is never evicted');
  assert.equal(plan.bytesAfter, 5500);
});

test('a reference cycle (hand-made bucket) is kept, with a warning, not half deleted', () => {
  const input = bucket({
    1: { refs: [2], age: 400 },
    2: { refs: [1, 3], age: 400 },
    3: { age: 400 },
    4: { refs: [1], age: 400 },
    5: { age: 400 },
  });
  const plan = planPrune(input);
  // 4 references the cycle but nothing references 4, so it can go first.
  assert.deepEqual(deletedPaths(plan), new Set([hp(4), hp(5)]));
  assert.ok(plan.warnings.some((w) => /cycle/.test(w)));
});

test('a narinfo that vanished between listing and reading is ignored', () => {
  const input = bucket({ 1: { age: 400 }, 2: { age: 400 } });
  (input.narInfos as Map<string, NarInfoRead>).delete(`${hp(2)}.narinfo`);
  const plan = planPrune(input);
  assert.deepEqual(deletedPaths(plan), new Set([hp(1)]));
  assert.equal(plan.before.narInfos.count, 1);
});

// ---- property: over random DAGs, the deletion order never breaks a closure ----

interface Gen {
  n: number;
  refs: number[][];
  ages: number[];
  narShare: (number | null)[];
  sizes: number[];
  unreadable: boolean[];
  pinned: boolean[];
  maxSize: number | undefined;
  target: number;
  protectDays: number;
}

const rare = fc.integer({ min: 0, max: 9 }).map((x) => x === 0);

const genBucket = fc.integer({ min: 1, max: 40 }).chain((n) =>
  fc.record({
    n: fc.constant(n),
    // References point to lower numbers only: a DAG, like real store paths.
    refs: fc.tuple(
      ...Array.from({ length: n }, (_, i) =>
        i === 0
          ? fc.constant<number[]>([])
          : fc.uniqueArray(fc.integer({ min: 0, max: i - 1 }), { maxLength: 4 }),
      ),
    ),
    ages: fc.tuple(...Array.from({ length: n }, () => fc.integer({ min: 0, max: 90 }))),
    narShare: fc.tuple(
      ...Array.from({ length: n }, (_, i) =>
        fc.option(fc.integer({ min: 0, max: Math.max(0, i - 1) }), { freq: 6 }),
      ),
    ),
    sizes: fc.tuple(...Array.from({ length: n }, () => fc.integer({ min: 1, max: 5000 }))),
    // Rare: about one path in ten.
    unreadable: fc.tuple(...Array.from({ length: n }, () => rare)),
    pinned: fc.tuple(...Array.from({ length: n }, () => rare)),
    maxSize: fc.option(fc.integer({ min: 1, max: 100_000 })),
    protectDays: fc.constantFrom(0, 10, 45),
    target: fc.integer({ min: 1, max: 100 }),
  }),
) as fc.Arbitrary<Gen>;

function inputOf(g: Gen) {
  const paths: Parameters<typeof bucket>[0] = {};
  const ownNar = new Set<number>();
  for (let i = 0; i < g.n; i++) {
    const share = g.narShare[i];
    // Some paths share an earlier path's NAR (identical contents, one object).
    const narOf = share !== undefined && share !== null && ownNar.has(share) ? share : undefined;
    if (narOf === undefined) ownNar.add(i);
    paths[i] = {
      refs: [...g.refs[i]!, i], // with a self-reference
      age: g.ages[i]!,
      narSize: g.sizes[i]!,
      narOf,
      unreadable: g.unreadable[i],
      listing: i % 3 === 0 ? 50 : undefined,
    };
  }
  const input = bucket(paths, {
    policy: {
      maxSizeBytes: g.maxSize ?? undefined,
      targetPercentage: g.target,
      graceMs: g.protectDays * DAY_MS,
    },
  });
  input.pinned = new Set(g.pinned.flatMap((p, i) => (p ? [`${hp(i)}.narinfo`] : [])));
  return input;
}

test('property: after any prefix of the deletion sequence, what remains is closure-complete', () => {
  fc.assert(
    fc.property(genBucket, (g) => {
      const input = inputOf(g);
      const plan = planPrune(input);
      const refs = (i: number) => g.refs[i]!.map(hp);
      const present = new Set(Array.from({ length: g.n }, (_, i) => hp(i)));
      const idx = new Map(Array.from({ length: g.n }, (_, i) => [hp(i), i]));
      const complete = () => {
        for (const p of present) {
          for (const r of refs(idx.get(p)!)) if (!present.has(r)) return `${p} lost ${r}`;
        }
        return undefined;
      };
      // Every prefix of the flat order keeps the rest closure-complete...
      for (const n of narInfoDeletions(plan)) {
        present.delete(n.hashPart);
        assert.equal(complete(), undefined);
      }
      // ...and so does any subset of a layer deleted first (batches are not ordered inside).
      const present2 = new Set(Array.from({ length: g.n }, (_, i) => hp(i)));
      for (const layer of plan.narInfoLayers) {
        const members = new Set(layer.map((n) => n.hashPart));
        for (const n of layer) {
          for (const r of refs(idx.get(n.hashPart)!)) {
            assert.ok(!members.has(r), 'no layer member references another');
          }
        }
        for (const n of layer) present2.delete(n.hashPart);
      }
      // Live, pinned and unreadable paths stay, with their closures.
      for (let i = 0; i < g.n; i++) {
        const live = g.ages[i]! * DAY_MS <= POLICY.retentionMs;
        const forced = g.unreadable[i] || g.pinned[i];
        if (forced || (live && !plan.size?.triggered)) {
          assert.ok(present.has(hp(i)), `path ${i} kept`);
        }
      }
      // No NAR a remaining narinfo points at is deleted.
      const deletingNars = new Set([...plan.releasedNars, ...plan.orphanNars].map((o) => o.key));
      for (const p of present) {
        const k = input.narInfos.get(`${p}.narinfo`)!.narKey!;
        assert.ok(!deletingNars.has(k), `NAR of kept ${p} stays`);
      }
      // The byte count after the plan is the sum of what remains.
      const gone = deletedKeys(plan);
      const counted = input.objects.filter((o) => o.key !== 'nix-cache-info' && !gone.has(o.key));
      assert.equal(
        plan.bytesAfter,
        counted.reduce((s, o) => s + o.size, 0),
      );
      // Size policy: under the target unless what must stay is already over it; evicted
      // closures are never newer than the cutoff, nor inside the protection age.
      if (plan.size?.triggered) {
        assert.ok(plan.bytesAfter <= Math.max(plan.size.targetBytes, plan.size.protectedBytes));
        for (const n of narInfoDeletions(plan)) {
          if (n.reason === 'size') {
            assert.ok(plan.size.cutoff && n.lastModified <= plan.size.cutoff);
            assert.ok(n.lastModified.getTime() <= NOW.getTime() - g.protectDays * DAY_MS);
          }
        }
      }
    }),
    { numRuns: 400 },
  );
});

test('the planner refuses a policy that makes no sense', () => {
  assert.throws(
    () => planPrune({ ...bucket({}), policy: { ...POLICY, retentionMs: 0 } }),
    /retentionMs is 0/,
  );
  assert.throws(
    () => planPrune({ ...bucket({}), policy: { ...POLICY, targetPercentage: 0 } }),
    (e: Error & { code?: string }) => e.code === 'PRUNE_BAD_POLICY',
  );
});

test('now is the injected clock: the same bucket a year later is all expired', () => {
  const input = bucket({ 1: { refs: [2], age: 1 }, 2: { age: 1 } });
  assert.equal(narInfoDeletions(planPrune(input)).length, 0);
  const later = planPrune({ ...input, now: new Date(NOW.getTime() + 365 * DAY_MS) });
  assert.equal(narInfoDeletions(later).length, 2);
});

test('pins and leases protect closures from the age and the size policy; an intent bounds what goes', () => {
  // Young chains (age under a day) 1 -> 2, 3 -> 4, 5 -> 6, 7 -> 8, all over a 1-byte budget.
  const spec = (refs: number[] = []) => ({ age: 0.5, refs, narSize: 1000, narInfoSize: 0 });
  const input = bucket(
    {
      1: spec([2]),
      2: spec(),
      3: spec([4]),
      4: spec(),
      5: spec([6]),
      6: spec(),
      7: spec([8]),
      8: spec(),
    },
    { policy: { maxSizeBytes: 1, targetPercentage: 100 } },
  );
  input.pins = new Set([hp(1)]);
  input.leased = new Set([hp(3)]);
  input.leasedNars = new Set([narKeyOf(6)]);
  const plan = planPrune(input);
  assert.deepEqual(deletedPaths(plan), new Set([hp(5), hp(6), hp(7), hp(8)]));
  assert.deepEqual(plan.kept.protectedBy, { pinned: 2, leased: 2, young: 0 });
  // A NAR a live lease names stays, although no narinfo is left to use it.
  assert.ok(!plan.releasedNars.some((o) => o.key === narKeyOf(6)));
  assert.ok(plan.releasedNars.some((o) => o.key === narKeyOf(8)));

  // Announced only 7 and 8 (the intent): nothing else goes, whatever the budget says.
  input.onlyDelete = new Set([hp(7), hp(8)]);
  input.onlyDeleteNars = new Set([narKeyOf(8)]);
  const bounded = planPrune(input);
  assert.deepEqual(deletedPaths(bounded), new Set([hp(7), hp(8)]));
  assert.deepEqual(
    bounded.releasedNars.map((o) => o.key),
    [narKeyOf(8)],
  );
  assert.equal(bounded.kept.notAnnounced, 6);

  // Age alone: the same protections hold for expired paths.
  const old = bucket({ 1: { age: 400, refs: [2] }, 2: { age: 400 }, 3: { age: 400 } });
  old.leased = new Set([hp(1)]);
  assert.deepEqual(deletedPaths(planPrune(old)), new Set([hp(3)]));
});

test('the grace period: narinfos younger than it are kept with their closures; 0 keeps none', () => {
  const input = bucket(
    { 1: { age: 0.001, refs: [2] }, 2: { age: 400 }, 3: { age: 400 } },
    { policy: { retentionMs: DAY_MS / 2000, graceMs: 10 * 60_000 } },
  );
  assert.deepEqual(deletedPaths(planPrune(input)), new Set([hp(3)]));
  assert.equal(planPrune(input).kept.protectedBy.young, 2);
  input.policy = { ...input.policy, graceMs: 0 };
  assert.deepEqual(deletedPaths(planPrune(input)), new Set([hp(1), hp(2), hp(3)]));
});
