import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatNarInfo,
  narInfoFingerprint,
  parseNarInfo,
  type NarInfo,
} from '../../../src/nix/narinfo.js';
import { InvalidNarInfoError } from '../../../src/nix/errors.js';
import { isLoftError } from '../../../src/util/errors.js';

/** Real Nix 2.8 output, from nix-formats.md. */
export const docNarInfo = `StorePath: /nix/store/5xd714cbfnkz02h2vbsj4fm03x3f15nf-baz
URL: nar/0zgj2sjpv96pb06i48m1mq7srg0syn605wlapckvlf618j29y2rr.nar.xz
Compression: xz
FileHash: sha256:0zgj2sjpv96pb06i48m1mq7srg0syn605wlapckvlf618j29y2rr
FileSize: 172
NarHash: sha256:0m29vxh7maf5ml5dyq7vy0ah53zah45pvy8yk5y8la4nnla95gfi
NarSize: 160
References: vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo
Sig: demo-1:nwUmmj0BFccvBfkMGnlTxnEEIbRtLQJn1Q5tGiSbIKW6MsH8Hx5uJ6Plq+Eg+iZnBdtYeWUBp1YNWRDNHD4VCA==
CA: text:sha256:190k5ph58syggimih0bad4nbgklmzwbha6n5d9x66yprq3c9immw
`;

test('the documented Nix 2.8 narinfo parses into its fields and formats back byte for byte', () => {
  const info = parseNarInfo(docNarInfo);
  assert.deepEqual(info, {
    storePath: '/nix/store/5xd714cbfnkz02h2vbsj4fm03x3f15nf-baz',
    url: 'nar/0zgj2sjpv96pb06i48m1mq7srg0syn605wlapckvlf618j29y2rr.nar.xz',
    compression: 'xz',
    fileHash: 'sha256:0zgj2sjpv96pb06i48m1mq7srg0syn605wlapckvlf618j29y2rr',
    fileSize: 172,
    narHash: 'sha256:0m29vxh7maf5ml5dyq7vy0ah53zah45pvy8yk5y8la4nnla95gfi',
    narSize: 160,
    references: ['vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo'],
    sigs: [
      'demo-1:nwUmmj0BFccvBfkMGnlTxnEEIbRtLQJn1Q5tGiSbIKW6MsH8Hx5uJ6Plq+Eg+iZnBdtYeWUBp1YNWRDNHD4VCA==',
    ],
    ca: 'text:sha256:190k5ph58syggimih0bad4nbgklmzwbha6n5d9x66yprq3c9immw',
  });
  assert.equal(formatNarInfo(info), docNarInfo);
});

test('the fingerprint has full reference paths and no deriver, CA, URL or compression', () => {
  const info = parseNarInfo(docNarInfo);
  assert.equal(
    narInfoFingerprint(info),
    '1;/nix/store/5xd714cbfnkz02h2vbsj4fm03x3f15nf-baz;sha256:0m29vxh7maf5ml5dyq7vy0ah53zah45pvy8yk5y8la4nnla95gfi;160;/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo',
  );
  const noRefs = { ...info, references: [], deriver: 'vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-x.drv' };
  assert.match(narInfoFingerprint(noRefs), /;160;$/);
  // Sorted, comma-joined; a hex narHash is normalised to nix32.
  const many = {
    ...info,
    narHash: 'sha256:' + Buffer.alloc(32, 1).toString('hex'),
    references: ['vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo', '5xd714cbfnkz02h2vbsj4fm03x3f15nf-baz'],
  };
  assert.match(
    narInfoFingerprint(many),
    /;sha256:[0-9a-z]{52};160;\/nix\/store\/5xd714cbfnkz02h2vbsj4fm03x3f15nf-baz,\/nix\/store\/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo$/,
  );
  assert.throws(() => narInfoFingerprint({ ...info, narSize: 0 }), /NarSize is not known/);
});

const base: NarInfo = {
  storePath: '/nix/store/5xd714cbfnkz02h2vbsj4fm03x3f15nf-baz',
  url: 'nar/x.nar.zst',
  compression: 'zstd',
  narHash: 'sha256:0m29vxh7maf5ml5dyq7vy0ah53zah45pvy8yk5y8la4nnla95gfi',
  narSize: 160,
  references: [],
  sigs: [],
};

test('format: References is written even when empty, Compression always, optional fields omitted', () => {
  assert.equal(
    formatNarInfo(base),
    `StorePath: /nix/store/5xd714cbfnkz02h2vbsj4fm03x3f15nf-baz
URL: nar/x.nar.zst
Compression: zstd
NarHash: sha256:0m29vxh7maf5ml5dyq7vy0ah53zah45pvy8yk5y8la4nnla95gfi
NarSize: 160
References: \n`,
  );
  assert.throws(() => formatNarInfo({ ...base, compression: '' }), /would mean bzip2/);
  assert.throws(() => formatNarInfo({ ...base, narSize: 0 }), /positive integer/);
  assert.throws(() => formatNarInfo({ ...base, url: 'a\nStorePath: /evil' }), /line break/);
  assert.throws(
    () => formatNarInfo({ ...base, references: ['not-a-basename'] }),
    /invalid store path/,
  );
});

test('format: Nix order, references and sigs sorted and unique, deriver/system/CA in place, extras last', () => {
  const text = formatNarInfo({
    ...base,
    fileHash: 'sha256-' + Buffer.alloc(32, 2).toString('base64'),
    fileSize: 0,
    references: [
      'vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo',
      '5xd714cbfnkz02h2vbsj4fm03x3f15nf-baz',
      '5xd714cbfnkz02h2vbsj4fm03x3f15nf-baz',
    ],
    deriver: '11111111111111111111111111111111-baz.drv',
    system: 'x86_64-linux',
    sigs: ['z:AAAA', 'a:BBBB', 'z:AAAA'],
    ca: 'fixed:r:sha256:0m29vxh7maf5ml5dyq7vy0ah53zah45pvy8yk5y8la4nnla95gfi',
    extra: [{ key: 'X-Loft', value: 'kept' }],
  });
  assert.deepEqual(
    text.split('\n').map((l) => l.split(':')[0]),
    [
      'StorePath',
      'URL',
      'Compression',
      'FileHash',
      'FileSize',
      'NarHash',
      'NarSize',
      'References',
      'Deriver',
      'System',
      'Sig',
      'Sig',
      'CA',
      'X-Loft',
      '',
    ],
  );
  assert.match(text, /^FileHash: sha256:[0-9a-z]{52}$/m);
  assert.match(text, /^FileSize: 0$/m);
  assert.match(
    text,
    /^References: 5xd714cbfnkz02h2vbsj4fm03x3f15nf-baz vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo$/m,
  );
  assert.match(text, /^Sig: a:BBBB\nSig: z:AAAA\n/m);
  const back = parseNarInfo(text);
  assert.deepEqual(back.extra, [{ key: 'X-Loft', value: 'kept' }]);
  assert.equal(back.system, 'x86_64-linux');
  assert.equal(formatNarInfo(back), text);
});

test('parse: a missing Compression means bzip2; unknown-deriver means none; unknown keys kept', () => {
  const text = docNarInfo
    .replace('Compression: xz\n', '')
    .replace('CA:', 'Deriver: unknown-deriver\nFuture: 1\nCA:');
  const info = parseNarInfo(text);
  assert.equal(info.compression, 'bzip2');
  assert.equal(info.deriver, undefined);
  assert.deepEqual(info.extra, [{ key: 'Future', value: '1' }]);
  assert.deepEqual(
    parseNarInfo(docNarInfo.replace(/^References: .*$/m, 'References: ')).references,
    [],
  );
  // Any hash form Nix reads is accepted and normalised.
  const hex = parseNarInfo(
    docNarInfo.replace(/^NarHash: .*$/m, `NarHash: sha256:${'ab'.repeat(32)}`),
  );
  assert.match(hex.narHash, /^sha256:[0-9a-z]{52}$/);
});

function rejects(text: string, line: number, re: RegExp) {
  assert.throws(
    () => parseNarInfo(text),
    (e: Error) =>
      e instanceof InvalidNarInfoError &&
      isLoftError(e, 'NARINFO_INVALID') &&
      e.line === line &&
      re.test(e.message),
    `line ${line} ${re}`,
  );
}

test('parse: malformed lines are rejected with their line numbers', () => {
  rejects(docNarInfo.replace('Compression: xz\n', 'Compression: xz\n\n'), 4, /blank line/);
  rejects(docNarInfo.replace('FileSize: 172', 'FileSize 172'), 5, /expected "Key: value"/);
  rejects(docNarInfo.replace('FileSize: 172', 'FileSize:172'), 5, /expected ": " after FileSize/);
  rejects(docNarInfo.replace('FileSize: 172\n', 'FileSize: 172\r\n'), 5, /carriage return/);
  rejects(docNarInfo.replace('FileSize: 172', 'FileSize: -1'), 5, /non-negative integer/);
  rejects(
    docNarInfo.replace('FileSize: 172', 'FileSize: 9007199254740993'),
    5,
    /non-negative integer/,
  );
  rejects(docNarInfo.replace('NarSize: 160', 'NarSize: 0'), 7, /NarSize must not be 0/);
  rejects(
    docNarInfo.replace(/^NarHash: sha256:0/m, 'NarHash: sha256:e'),
    6,
    /NarHash: invalid hash/,
  );
  rejects(docNarInfo.replace(/^NarHash: sha256:/m, 'NarHash: '), 6, /type is missing/);
  rejects(
    docNarInfo.replace('References: vxj', 'References: /nix/store/vxj'),
    8,
    /References: invalid store path/,
  );
  rejects(
    docNarInfo.replace(/^StorePath: .*$/m, 'StorePath: /tmp/foo'),
    1,
    /StorePath: invalid store path/,
  );
  rejects(docNarInfo + 'URL: again\n', 11, /URL appears again \(first on line 2\)/);
  rejects(docNarInfo.slice(0, -1), 10, /does not end with a newline/);
  rejects(docNarInfo.replace('FileSize', 'File Size'), 5, /invalid key/);
});

test('parse: required fields are checked', () => {
  rejects(docNarInfo.replace(/^StorePath: .*\n/m, ''), 0, /StorePath is missing/);
  rejects(docNarInfo.replace(/^NarHash: .*\n/m, ''), 0, /NarHash is missing/);
  rejects(docNarInfo.replace(/^URL: .*\n/m, ''), 0, /URL is missing/);
  rejects(docNarInfo.replace(/^URL: .*$/m, 'URL: '), 0, /URL is missing/);
  rejects(docNarInfo.replace(/^NarSize: .*\n/m, ''), 0, /NarSize is missing/);
  rejects('', 0, /StorePath is missing/);
});

test('parse: a custom store directory', () => {
  const text = docNarInfo.replace('StorePath: /nix/store/', 'StorePath: /tmp/s/');
  assert.equal(
    parseNarInfo(text, { storeDir: '/tmp/s' }).storePath,
    '/tmp/s/5xd714cbfnkz02h2vbsj4fm03x3f15nf-baz',
  );
  rejects(text, 1, /not in the store directory \/nix\/store/);
  assert.match(
    narInfoFingerprint(parseNarInfo(text, { storeDir: '/tmp/s' })),
    /;\/tmp\/s\/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo$/,
  );
});
