import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromDaemonPathInfo } from '../../../src/store/path-info.js';

test('daemon path info becomes canonical: nix32 narHash, sorted references, undefined for ""', () => {
  const info = fromDaemonPathInfo({
    path: '/nix/store/5xd714cbfnkz02h2vbsj4fm03x3f15nf-baz',
    deriver: '',
    narHashHex: '10551daed7fa467d0b58826e7eb9a0f2af7d693de319f2ef775fffcda244b9f6',
    references: [
      '/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo',
      '/nix/store/5xd714cbfnkz02h2vbsj4fm03x3f15nf-baz',
    ],
    registrationTime: 1700000000,
    narSize: 120,
    ultimate: true,
    sigs: ['k:abc'],
    ca: '',
  });
  assert.deepEqual(info, {
    path: '/nix/store/5xd714cbfnkz02h2vbsj4fm03x3f15nf-baz',
    deriver: undefined,
    narHash: 'sha256:1xmr8jicvzszfzpz46g37mlpvbzjl2wpwvl2b05psipssyp1sm8h',
    narSize: 120,
    references: [
      '/nix/store/5xd714cbfnkz02h2vbsj4fm03x3f15nf-baz',
      '/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo',
    ],
    registrationTime: 1700000000,
    ultimate: true,
    sigs: ['k:abc'],
    ca: undefined,
  });
});
