import { test } from 'node:test';
import assert from 'node:assert/strict';
import { narListing, nixJsonString, NarListingBuilder } from '../../../src/nix/nar-listing.js';
import { NarParser } from '../../../src/nix/nar-parse.js';
import { nar } from './nar-bytes.js';

test('JSON strings are escaped as Nix 2.8 does, not as JSON.stringify', () => {
  const s = (b: Buffer | string) =>
    nixJsonString(typeof b === 'string' ? Buffer.from(b) : b).toString('latin1');
  assert.equal(s('plain'), '"plain"');
  assert.equal(s('a"b\\c'), '"a\\"b\\\\c"');
  assert.equal(s('\n\r\t'), '"\\n\\r\\t"');
  // JSON.stringify writes \b and \f; Nix writes \u0008 and \u000c.
  assert.equal(s('\b\f\x01\x1f'), '"\\u0008\\u000c\\u0001\\u001f"');
  assert.equal(s('\x7f'), '"\x7f"');
  // Bytes >= 0x80 (valid UTF-8 or not) are copied raw.
  assert.deepEqual(
    nixJsonString(Buffer.from([0xff, 0xe2, 0x82, 0xac])),
    Buffer.from([0x22, 0xff, 0xe2, 0x82, 0xac, 0x22]),
  );
});

test('a listing has Nix shape, key order and offsets', () => {
  const bytes = nar({
    type: 'directory',
    entries: [
      [
        'bin',
        {
          type: 'directory',
          entries: [['hello', { type: 'regular', contents: 'hi\n', executable: true }]],
        },
      ],
      ['empty', { type: 'directory', entries: [] }],
      ['link', { type: 'symlink', target: 'bin/hello' }],
      ['zero', { type: 'regular', contents: '' }],
    ],
  });
  const text = narListing(bytes).toString();
  const off = bytes.indexOf('hi\n');
  const zeroOff = bytes.lastIndexOf(Buffer.alloc(8)); // not used for assert, see below
  void zeroOff;
  const parsed = JSON.parse(text);
  assert.equal(parsed.version, 1);
  assert.equal(parsed.root.entries.bin.entries.hello.narOffset, off);
  assert.equal(
    text,
    `{"version":1,"root":{"type":"directory","entries":{"bin":{"type":"directory","entries":{"hello":{"type":"regular","size":3,"executable":true,"narOffset":${off}}}},"empty":{"type":"directory","entries":{}},"link":{"type":"symlink","target":"bin/hello"},"zero":{"type":"regular","size":0,"narOffset":${parsed.root.entries.zero.narOffset}}}}}`,
  );
  // The zero-size file's offset is right after its size field, as in Nix.
  const z = parsed.root.entries.zero.narOffset as number;
  assert.deepEqual(bytes.subarray(z - 16, z - 8), Buffer.from('contents'));
});

test('single-node NARs and incomplete listings', () => {
  assert.equal(
    narListing(nar({ type: 'regular', contents: 'hi\n' })).toString(),
    '{"version":1,"root":{"type":"regular","size":3,"narOffset":96}}',
  );
  assert.equal(
    narListing(nar({ type: 'symlink', target: 'x' })).toString(),
    '{"version":1,"root":{"type":"symlink","target":"x"}}',
  );
  const b = new NarListingBuilder();
  const p = new NarParser({ visitor: b });
  const bytes = nar({ type: 'directory', entries: [['a', { type: 'regular', contents: 'x' }]] });
  p.push(bytes.subarray(0, bytes.length - 8));
  assert.throws(
    () => b.toBuffer(),
    (e: Error & { code?: string }) => e.code === 'NAR_LISTING_INCOMPLETE',
  );
  p.push(bytes.subarray(bytes.length - 8));
  assert.ok(p.done);
  assert.match(b.toBuffer().toString(), /"a":\{"type":"regular","size":1/);
});
