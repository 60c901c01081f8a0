import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  fromDaemonPathInfo,
  pathInfoFromJson,
  pathInfoToJson,
  type PathInfo,
} from '../../../src/store/path-info.js';

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

test('path info survives pathInfoToJson and pathInfoFromJson; text it did not write gives undefined', () => {
  const info: PathInfo = {
    path: '/nix/store/00000000000000000000000000000001-a',
    deriver: '/nix/store/00000000000000000000000000000002-a.drv',
    narHash: 'sha256:1xmr8jicvzszfzpz46g37mlpvbzjl2wpwvl2b05psipssyp1sm8h',
    narSize: 120,
    references: [
      '/nix/store/00000000000000000000000000000001-a',
      '/nix/store/00000000000000000000000000000003-b',
    ],
    registrationTime: 1700000000,
    ultimate: true,
    sigs: ['cache.example-1:c2ln'],
    ca: undefined,
  };
  const text = pathInfoToJson(info);
  assert.deepEqual(pathInfoFromJson(info.path, text, '/nix/store'), info);
  const noDeriver = { ...info, deriver: undefined, ca: 'fixed:r:sha256:abc' };
  assert.deepEqual(pathInfoFromJson(info.path, pathInfoToJson(noDeriver), '/nix/store'), noDeriver);
  for (const bad of [
    'not json',
    'null',
    '[]',
    JSON.stringify({ ...JSON.parse(text), narHash: 'md5:00' }),
    JSON.stringify({ ...JSON.parse(text), narSize: '120' }),
    JSON.stringify({ ...JSON.parse(text), references: ['/elsewhere/x'] }),
    JSON.stringify({ ...JSON.parse(text), sigs: [1] }),
    JSON.stringify({ ...JSON.parse(text), ultimate: 'yes' }),
  ]) {
    assert.equal(pathInfoFromJson(info.path, bad, '/nix/store'), undefined, bad);
  }
  // Another store directory: its references are not paths of this one.
  assert.equal(pathInfoFromJson(info.path, text, '/other/store'), undefined);
});
