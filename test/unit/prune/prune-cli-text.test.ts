import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planPrune } from '../../../src/prune/plan.js';
import { planText, resultText } from '../../../src/cli/commands/prune.js';
import type { PruneResult } from '../../../src/prune/prune.js';
import { bucket, hoursAgo, hp, narKeyOf } from './fixtures.js';

test('the dry-run text gives counts and bytes per category, and the size decision', () => {
  const input = bucket(
    {
      1: { age: 1, narSize: 4000, listing: 100 },
      2: { age: 40, refs: [3], narSize: 1024 * 1024, listing: 100 },
      3: { age: 40, narSize: 1000 },
    },
    {
      objects: [{ key: narKeyOf(9), size: 2048, lastModified: hoursAgo(30) }],
      uploads: [{ key: narKeyOf(8), uploadId: 'u', initiated: hoursAgo(30) }],
      policy: { maxSizeBytes: 1_000_000_000 },
    },
  );
  const text = planText(planPrune(input), 's3://bucket');
  assert.match(
    text,
    /^prune plan for s3:\/\/bucket at 2026-06-01T00:00:00.000Z \(retention 30 days\):/,
  );
  assert.match(
    text,
    /in the cache: 3 narinfos \(1.46 KiB\), 2 listings \(200 B\), 4 NARs \(1.01 MiB\)/,
  );
  assert.match(text, /delete 2 expired narinfos \(1000 B\)/);
  assert.match(text, /delete 1 listing \(100 B\) of those narinfos/);
  assert.match(text, /delete 2 NARs \(1.00 MiB\) no remaining narinfo uses/);
  assert.match(text, /delete 1 orphan NAR \(2.00 KiB\) older than 1 day/);
  assert.match(text, /abort 1 multipart upload older than 1 day/);
  assert.match(text, /keep 1 narinfo \(1 live/);
  assert.match(text, /size budget 954 MiB, target 763 MiB: .* within budget/);
  assert.ok(!text.includes(hp(1)), 'no per-path noise');
});

test('an empty plan says so; the summary counts what was deleted', () => {
  const plan = planPrune(bucket({ 1: { age: 1 } }));
  assert.match(planText(plan, 'b'), /nothing to delete/);
  const r: PruneResult = {
    dryRun: false,
    plan,
    deleted: {
      narInfos: { count: 3, bytes: 1500 },
      listings: { count: 1, bytes: 10 },
      releasedNars: { count: 2, bytes: 2048 },
      orphanNars: { count: 1, bytes: 1024 },
      orphanListings: { count: 0, bytes: 0 },
      staleUploads: 2,
    },
    spared: ['x.narinfo'],
    alreadyGone: 0,
    interrupted: true,
    narInfosFetched: 1,
    ms: 1500,
  };
  const text = resultText(r, 'b');
  assert.match(
    text,
    /deleted 3 narinfos \(1.46 KiB\), 1 listing \(10 B\), 3 NARs \(3.00 KiB\), aborted 2 stale uploads: 4.47 KiB in 1.50 s/,
  );
  assert.match(text, /kept 1 narinfos refreshed while pruning/);
  assert.match(text, /stopped early/);
});
