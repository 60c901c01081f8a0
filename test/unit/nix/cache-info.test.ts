import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatCacheInfo, parseCacheInfo } from '../../../src/nix/cache-info.js';

test('nix-cache-info: what we write reads back', () => {
  const text = formatCacheInfo('/nix/store');
  assert.equal(text, 'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n');
  assert.deepEqual(parseCacheInfo(text), {
    storeDir: '/nix/store',
    wantMassQuery: true,
    priority: 40,
  });
});

test('nix-cache-info is read as Nix reads it: trimmed values, odd lines and names ignored', () => {
  const text = 'junk line\nStoreDir:/gnu/store  \r\nX-Other: 1\nWantMassQuery: 0\nPriority: high\n';
  assert.deepEqual(parseCacheInfo(text), { storeDir: '/gnu/store', wantMassQuery: false });
  assert.deepEqual(parseCacheInfo(''), {});
});
