import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCacheInfo } from '../../../src/nix/cache-info.js';
import { readNarInfo } from '../../../src/prune/narinfo-read.js';
import { policyFromSettings, targetBytes, DAY_MS } from '../../../src/prune/policy.js';
import { NarInfoCache, changedNarInfoKeys, sameVersion } from '../../../src/prune/snapshot.js';

// Real Nix 2.8 output (docs/nix-formats.md section 3), with a self-reference added.
const SELF = '5xd714cbfnkz02h2vbsj4fm03x3f15nf';
const REAL = `StorePath: /nix/store/${SELF}-baz
URL: nar/0zgj2sjpv96pb06i48m1mq7srg0syn605wlapckvlf618j29y2rr.nar.xz
Compression: xz
FileHash: sha256:0zgj2sjpv96pb06i48m1mq7srg0syn605wlapckvlf618j29y2rr
FileSize: 172
NarHash: sha256:0m29vxh7maf5ml5dyq7vy0ah53zah45pvy8yk5y8la4nnla95gfi
NarSize: 160
References: ${SELF}-baz vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo
Sig: demo-1:nwUmmj0BFccvBfkMGnlTxnEEIbRtLQJn1Q5tGiSbIKW6MsH8Hx5uJ6Plq+Eg+iZnBdtYeWUBp1YNWRDNHD4VCA==
CA: text:sha256:190k5ph58syggimih0bad4nbgklmzwbha6n5d9x66yprq3c9immw
`;

test('a real narinfo gives its references (without itself) and its NAR key', () => {
  const r = readNarInfo(REAL, SELF);
  assert.deepEqual(r, {
    references: ['vxjiwkjkn7x4079qvh1jkl5pn05j2aw0'],
    narKey: 'nar/0zgj2sjpv96pb06i48m1mq7srg0syn605wlapckvlf618j29y2rr.nar.xz',
  });
});

test('a narinfo that does not parse is salvaged: its references and NAR are still named', () => {
  const broken = REAL.replace('NarSize: 160\n', 'NarSize: 160\n\n');
  const r = readNarInfo(broken, SELF);
  assert.match(r.problem ?? '', /blank line/);
  assert.deepEqual(r.references, ['vxjiwkjkn7x4079qvh1jkl5pn05j2aw0']);
  assert.equal(r.narKey, 'nar/0zgj2sjpv96pb06i48m1mq7srg0syn605wlapckvlf618j29y2rr.nar.xz');
  // Garbage names nothing, and says why.
  const junk = readNarInfo('\u0000\u0001 not a narinfo', SELF);
  assert.deepEqual(junk.references, []);
  assert.equal(junk.narKey, undefined);
  assert.ok(junk.problem);
});

test('a URL that is not a plain key is reported, not followed', () => {
  const r = readNarInfo(REAL.replace(/^URL: .*$/m, 'URL: ../other/x.nar.xz'), SELF);
  assert.equal(r.narKey, undefined);
  assert.equal(r.unresolvedUrl, '../other/x.nar.xz');
  assert.equal(r.problem, undefined);
});

test('a narinfo of another store directory parses with the StoreDir of nix-cache-info', () => {
  const other = REAL.replaceAll('/nix/store/', '/gnu/store/');
  assert.ok(readNarInfo(other, SELF).problem, 'not under /nix/store');
  const dir = parseCacheInfo('StoreDir: /gnu/store\nWantMassQuery: 1\nPriority: 40\n').storeDir;
  assert.equal(dir, '/gnu/store');
  assert.equal(readNarInfo(other, SELF, dir).problem, undefined);
});

test('policy from the prune_* settings', () => {
  const p = policyFromSettings({ retentionDays: 7, maxSizeBytes: 10_000, targetPercentage: 80 });
  assert.equal(p.retentionMs, 7 * DAY_MS);
  assert.equal(p.orphanGraceMs, DAY_MS);
  assert.equal(p.staleUploadMs, DAY_MS);
  assert.equal(targetBytes(p), 8000);
  assert.equal(
    targetBytes(
      policyFromSettings({ retentionDays: 1, maxSizeBytes: undefined, targetPercentage: 80 }),
    ),
    undefined,
  );
  assert.throws(
    () => policyFromSettings({ retentionDays: 0, maxSizeBytes: undefined, targetPercentage: 80 }),
    /retentionMs/,
  );
});

test('versions compare at one-second resolution (HEAD dates have no milliseconds)', () => {
  const listed = { size: 10, lastModified: new Date('2026-01-01T00:00:00.730Z') };
  assert.ok(sameVersion(listed, { size: 10, lastModified: new Date('2026-01-01T00:00:00Z') }));
  assert.ok(!sameVersion(listed, { size: 10, lastModified: new Date('2026-01-01T00:00:01Z') }));
  assert.ok(!sameVersion(listed, { size: 11, lastModified: new Date('2026-01-01T00:00:00Z') }));
});

test('the narinfo cache answers only for the same version, and forgets deleted keys', () => {
  const cache = new NarInfoCache();
  const o = { key: `${SELF}.narinfo`, size: 100, lastModified: new Date(1000_000) };
  const read = { references: ['a'.repeat(32)], narKey: 'nar/x.nar' };
  const stored = cache.set(o, read);
  assert.deepEqual(stored, read);
  assert.equal(cache.get(o), stored);
  assert.equal(cache.get({ ...o, lastModified: new Date(2000_000) }), undefined, 'refreshed');
  assert.equal(cache.get({ ...o, size: 101 }), undefined, 'rewritten');
  cache.retainOnly(new Set(['other']));
  assert.equal(cache.size, 0);
});

test('changed narinfo keys: new or different version; other keys ignored', () => {
  const t = new Date(5000_000);
  const a = { key: `${'a'.repeat(32)}.narinfo`, size: 1, lastModified: t };
  const b = { key: `${'b'.repeat(32)}.narinfo`, size: 1, lastModified: t };
  const c = { key: `${'c'.repeat(32)}.narinfo`, size: 1, lastModified: t };
  const ls = { key: `${'d'.repeat(32)}.ls`, size: 1, lastModified: t };
  const changed = changedNarInfoKeys(
    [a, b],
    [a, { ...b, lastModified: new Date(9000_000) }, c, ls],
  );
  assert.deepEqual([...changed].sort(), [b.key, c.key]);
});
