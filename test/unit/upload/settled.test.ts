import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalIndex } from '../../../src/index/local-index.js';
import { storePathHashPart } from '../../../src/nix/store-path.js';
import { createLocalDirStore } from '../../../src/storage/local-dir-store.js';
import {
  NO_PRUNE_MARK,
  PRUNE_MARK_KEY,
  readPruneMark,
  writePruneMark,
} from '../../../src/storage/prune-mark.js';
import type { BlobStore } from '../../../src/storage/port.js';
import type { PathInfo } from '../../../src/store/path-info.js';
import type { CachedPath, PushPlan } from '../../../src/upload/plan.js';
import type { PushContext } from '../../../src/upload/push-context.js';
import { settledWithoutLease } from '../../../src/upload/settled.js';
import { nullLogger } from '../../../src/util/log.js';
import { wrapStore } from '../../support/blobs.js';

const h = (c: string) => c.repeat(32);
const path = (c: string) => `/nix/store/${h(c)}-p-${c}`;

function info(p: string): PathInfo {
  return {
    path: p,
    deriver: undefined,
    narHash: `sha256:${'0'.repeat(52)}`,
    narSize: 100,
    references: [],
    registrationTime: 0,
    ultimate: true,
    sigs: [],
    ca: undefined,
  };
}

function plan(cached: CachedPath[], extra: Partial<PushPlan> = {}): PushPlan {
  return {
    toUpload: [],
    alreadyCached: cached,
    upstream: [],
    excluded: [],
    toRefresh: [],
    ...extra,
  };
}

/** Cached paths as a plan reads them from the index now (with their prune marks). */
function fromIndex(index: LocalIndex, ...paths: string[]): CachedPath[] {
  const rows = index.getPresentMany(paths.map((p) => storePathHashPart(p)));
  return paths.map((p) => ({
    info: info(p),
    source: 'index',
    lastModified: new Date(),
    pruneMark: rows.get(storePathHashPart(p))?.pruneMark,
  }));
}

/** A directory cache, its index, and a context; the store's gets are counted. */
function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'loft-settled-'));
  const inner = createLocalDirStore({ dir: join(dir, 'cache'), fsync: false });
  let gets = 0;
  const blobs: BlobStore = wrapStore(inner, { get: (k, o) => (gets++, inner.get(k, o)) });
  const index = LocalIndex.open(join(dir, 'index.db'), blobs.id);
  const ctx = {
    store: { storeDir: '/nix/store' },
    blobs,
    index,
    logger: nullLogger,
  } as unknown as PushContext;
  return {
    ctx,
    index,
    blobs: inner,
    gets: () => gets,
    done: () => {
      index.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('settled without a lease only when every cached path was confirmed under the mark the bucket shows', async () => {
  const s = setup();
  try {
    const [a, b] = [path('a'), path('b')];
    s.index.recordPresent([
      { hashPart: h('a'), narinfoTime: 1 },
      { hashPart: h('b'), narinfoTime: 1 },
    ]);
    const p = () => plan(fromIndex(s.index, a, b));
    assert.equal(await settledWithoutLease(s.ctx, p()), false, 'never confirmed: no mark');

    assert.equal(await readPruneMark(s.blobs), NO_PRUNE_MARK, 'no prune ever wrote one');
    s.index.confirmPresent([h('a'), h('b')], NO_PRUNE_MARK);
    assert.equal(await settledWithoutLease(s.ctx, p()), true);

    // A prune rewrites the mark: the entries are no longer trusted.
    await writePruneMark(s.blobs);
    assert.equal(await settledWithoutLease(s.ctx, p()), false);
    const mark = await readPruneMark(s.blobs);
    s.index.confirmPresent([h('a')], mark);
    assert.equal(await settledWithoutLease(s.ctx, p()), false, 'b still has the old mark');
    s.index.confirmPresent([h('b')], mark);
    assert.equal(await settledWithoutLease(s.ctx, p()), true);

    // Every write of the mark differs, even from the same process in the same second.
    await writePruneMark(s.blobs);
    assert.notEqual(await readPruneMark(s.blobs), mark);
  } finally {
    s.done();
  }
});

test('a plan that uploads, refreshes or learned a path from the bucket is never settled without a lease, and costs no request', async () => {
  const s = setup();
  try {
    const [a, b] = [path('a'), path('b')];
    s.index.recordPresent([{ hashPart: h('a'), narinfoTime: 1 }]);
    s.index.confirmPresent([h('a')], NO_PRUNE_MARK);
    const cached = fromIndex(s.index, a);
    const remote: CachedPath = { info: info(b), source: 'remote', lastModified: new Date() };
    for (const p of [
      plan(cached, { toUpload: [info(b)] }),
      plan(cached, { toRefresh: cached }),
      plan([...cached, remote]),
    ]) {
      assert.equal(await settledWithoutLease(s.ctx, p), false);
    }
    assert.equal(s.gets(), 0, 'decided without reading the mark');
    // Nothing cached at all (everything upstream or excluded): nothing to confirm.
    assert.equal(await settledWithoutLease(s.ctx, plan([], { upstream: [info(b)] })), true);
    assert.equal(s.gets(), 0);
    // Without an index that can confirm, every push takes the lease.
    const noIndex = { ...s.ctx, index: undefined } as PushContext;
    assert.equal(await settledWithoutLease(noIndex, plan(cached)), false);
    assert.ok(PRUNE_MARK_KEY.startsWith('loft/'), 'outside the root listing');
  } finally {
    s.done();
  }
});
