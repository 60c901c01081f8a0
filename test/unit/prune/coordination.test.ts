import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isExpired, parseCoordBody, type CoordObject } from '../../../src/storage/coordination.js';
import { formatPin, parsePin, pinKey } from '../../../src/storage/pins.js';

const HP = 'a'.repeat(32).replace(/a/g, '0');
const NAR = `nar/${'1'.repeat(52)}.nar.zst`;
const lease = (over: Record<string, unknown> = {}) =>
  JSON.stringify({
    type: 'loft-lease',
    version: 1,
    ttlSeconds: 300,
    owner: 'host 1',
    narInfos: [HP],
    nars: [NAR],
    ...over,
  });

test('a lease parses; each malformed field is named in the problem', () => {
  // Every field read back as written.
  assert.deepEqual(parseCoordBody(lease(), 'loft-lease'), JSON.parse(lease()));
  const problems: [string, RegExp][] = [
    ['{', /not JSON/],
    ['[]', /"type" is undefined/],
    [lease({ type: 'loft-prune-intent' }), /"type" is "loft-prune-intent"/],
    [lease({ version: 2 }), /"version" is 2/],
    [lease({ ttlSeconds: 0 }), /"ttlSeconds" is 0/],
    [lease({ ttlSeconds: 1e9 }), /"ttlSeconds"/],
    [lease({ narInfos: 'x' }), /"narInfos" is not an array/],
    [lease({ narInfos: ['short'] }), /"narInfos" holds "short"/],
    [lease({ nars: ['../etc/passwd'] }), /"nars" holds "..\/etc\/passwd", which is not a NAR key/],
  ];
  for (const [text, re] of problems) {
    const r = parseCoordBody(text, 'loft-lease');
    assert.equal(typeof r, 'string', text);
    assert.match(r as string, re);
  }
});

test('expiry: LastModified plus ttl plus one second of LastModified resolution, by server time', () => {
  const o = {
    ...(parseCoordBody(lease({ ttlSeconds: 10 }), 'loft-lease') as object),
    key: 'loft/leases/x.json',
    lastModified: new Date(1_000_000),
  } as CoordObject;
  assert.equal(isExpired(o, 1_000_000 + 11_000), false, 'at the bound: still live');
  assert.equal(isExpired(o, 1_000_000 + 11_001), true);
});

test('pins: format and parse round-trip; a pin must match its key and name a store path', () => {
  const storePath = `/nix/store/${HP}-hello-2.12`;
  const text = formatPin({ name: 'production', storePath, created: new Date(0) });
  assert.deepEqual(parsePin(text, pinKey('production')), {
    name: 'production',
    storePath,
    hashPart: HP,
    created: '1970-01-01T00:00:00.000Z',
  });
  assert.match(
    parsePin(text, pinKey('staging')) as string,
    /"name" is "production", which does not match the key/,
  );
  assert.match(
    parsePin(
      '{"type":"loft-pin","version":1,"name":"p","storePath":"/tmp/x"}',
      pinKey('p'),
    ) as string,
    /not a store path/,
  );
  assert.match(parsePin('nope', pinKey('p')) as string, /not JSON/);
});
