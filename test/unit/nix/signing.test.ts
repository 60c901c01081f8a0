import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import {
  generateKeyPair,
  parsePublicKey,
  parseSecretKey,
  PublicKey,
  SecretKey,
  signNarInfo,
  validNarInfoSigners,
  verifyNarInfoSignature,
} from '../../../src/nix/signing.js';
import { narInfoFingerprint, parseNarInfo } from '../../../src/nix/narinfo.js';
import { SigningKeyError } from '../../../src/nix/errors.js';
import { docNarInfo } from './narinfo.test.js';

// The test vector from nix-formats.md: seed = 32 bytes of 0x07. The doc's secret key text
// lacks four characters ("BwcH") and decodes to 61 bytes; Nix 2.8 rejects it ("secret key is
// not valid"). This is the real one: `nix key convert-secret-to-public` maps it to PUBLIC.
const SECRET =
  'demo-1:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwfqSmxj4pxSCr71UHsTLsX5lUd2rr6+e5JCHuppFEbSLA==';
const DOC_SECRET_TYPO =
  'demo-1:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwfqSmxj4pxSCr71UHsTLsX5lUd2rr6+e5JCHuppFEbSLA==';
const PUBLIC = 'demo-1:6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw=';
const DOC_SIG =
  'demo-1:nwUmmj0BFccvBfkMGnlTxnEEIbRtLQJn1Q5tGiSbIKW6MsH8Hx5uJ6Plq+Eg+iZnBdtYeWUBp1YNWRDNHD4VCA==';

test('the documented key pair: seed 0x07 gives the documented public key and the corrected secret', () => {
  const sk = SecretKey.fromSeed('demo-1', Buffer.alloc(32, 7));
  assert.equal(sk.exportKeyFile(), SECRET);
  assert.equal(sk.publicKey().toString(), PUBLIC);
  const parsed = parseSecretKey(SECRET + '\n', 'demo.sk');
  assert.equal(parsed.name, 'demo-1');
  assert.equal(parsed.publicKey().toString(), PUBLIC);
  assert.ok(parsePublicKey(PUBLIC, 'demo.pk').equals(parsed.publicKey()));
  assert.throws(() => parseSecretKey(DOC_SECRET_TYPO, 'doc'), /decodes to 61 bytes, not 64/);
});

test('signing the documented narinfo reproduces the Sig Nix wrote; verification accepts it', () => {
  const info = parseNarInfo(docNarInfo);
  const sk = parseSecretKey(SECRET, 'demo.sk');
  assert.equal(sk.sign(narInfoFingerprint(info)), DOC_SIG);
  const pk = parsePublicKey(PUBLIC, 'demo.pk');
  assert.ok(pk.verify(narInfoFingerprint(info), DOC_SIG));
  assert.ok(verifyNarInfoSignature(info, [pk]));
  // Any change to a fingerprinted field breaks it; a non-fingerprinted one does not.
  assert.ok(!verifyNarInfoSignature({ ...info, narSize: 161 }, [pk]));
  assert.ok(!verifyNarInfoSignature({ ...info, references: [] }, [pk]));
  assert.ok(verifyNarInfoSignature({ ...info, url: 'elsewhere', ca: undefined }, [pk]));
});

test('signNarInfo adds one signature, keeps others, never duplicates', () => {
  const info = { ...parseNarInfo(docNarInfo), sigs: ['other:AAAA'] };
  const sk = parseSecretKey(SECRET, 'demo.sk');
  const signed = signNarInfo(info, sk);
  assert.deepEqual(signed.sigs, ['other:AAAA', DOC_SIG]);
  assert.deepEqual(info.sigs, ['other:AAAA'], 'input not mutated');
  assert.deepEqual(signNarInfo(signed, sk).sigs, signed.sigs);
  const { publicKey: stranger } = generateKeyPair('demo-1');
  assert.deepEqual(validNarInfoSigners(signed, [stranger, sk.publicKey()]), [sk.publicKey()]);
  assert.ok(!verifyNarInfoSignature(signed, [stranger]));
});

test('verify is false for another key name, other data, or malformed signatures', () => {
  const { secretKey, publicKey } = generateKeyPair('k1');
  const sig = secretKey.sign('data');
  assert.ok(publicKey.verify('data', sig));
  assert.ok(publicKey.verify(Buffer.from('data'), sig));
  assert.ok(!publicKey.verify('datA', sig));
  assert.ok(!publicKey.verify('data', sig.replace(/^k1:/, 'k2:')));
  assert.ok(!publicKey.verify('data', 'k1:not-base64'));
  assert.ok(!publicKey.verify('data', 'k1:AAAA'));
  assert.ok(!publicKey.verify('data', 'nocolon'));
  assert.ok(!new PublicKey('k1', Buffer.alloc(32, 9)).verify('data', sig));
});

test('generated pairs round-trip through their key file text', () => {
  const { secretKey, publicKey } = generateKeyPair('cache.example.org-1');
  const again = parseSecretKey(secretKey.exportKeyFile(), 'generated');
  assert.ok(again.publicKey().equals(publicKey));
  assert.equal(again.sign('x'), secretKey.sign('x'));
  assert.match(publicKey.toString(), /^cache\.example\.org-1:[A-Za-z0-9+/]{43}=$/);
});

test('a SecretKey does not reveal its bytes through inspect, JSON or String', () => {
  const sk = parseSecretKey(SECRET, 'demo.sk');
  const b64 = SECRET.split(':')[1]!;
  const seedB64 = Buffer.alloc(32, 7).toString('base64');
  const seedHex = Buffer.alloc(32, 7).toString('hex');
  const shown = [
    inspect(sk),
    inspect(sk, { showHidden: true, depth: 10, getters: true }),
    inspect({ nested: { sk } }),
    JSON.stringify(sk),
    JSON.stringify({ sk }),
    String(sk),
    `${sk}`,
    Object.keys(sk).join(','),
  ];
  for (const s of shown) {
    assert.ok(
      !s.includes(b64) && !s.includes(seedB64) && !s.includes(seedHex) && !s.includes('BwcHBwcH'),
      s,
    );
  }
  assert.match(inspect(sk), /demo-1/);
});

function keyError(fn: () => unknown, re: RegExp, secretText?: string) {
  assert.throws(fn, (e: Error) => {
    assert.ok(e instanceof SigningKeyError);
    assert.equal(e.code, 'SIGNING_KEY_INVALID');
    assert.match(e.message, re);
    assert.match(e.message, /\/etc\/loft\/key/);
    assert.match(e.message, /expected one line "<key name>:<base64 of (64|32) bytes>"/);
    assert.match(e.hint ?? '', /nix-store --generate-binary-cache-key/);
    if (secretText) {
      const full = `${e.message} ${e.hint} ${inspect(e)}`;
      assert.ok(
        !full.includes(secretText.split(':')[1]!.slice(0, 12)),
        'no key material in the error',
      );
    }
    return true;
  });
}

test('bad key files: errors name the file and the expected format, never the key', () => {
  const src = '/etc/loft/key';
  keyError(() => parseSecretKey('', src), /the file is empty/);
  keyError(() => parseSecretKey(SECRET.replace(':', ''), src), /no ":"/, SECRET);
  keyError(
    () => parseSecretKey(SECRET.replace('demo-1', ''), src),
    /key name before ":" is empty/,
    SECRET,
  );
  keyError(() => parseSecretKey(SECRET.slice(0, -4) + '!!!!', src), /not valid base64/, SECRET);
  keyError(
    () => parseSecretKey(PUBLIC, src),
    /decodes to 32 bytes, not 64 \(is this the public key file\?\)/,
    PUBLIC,
  );
  keyError(() => parseSecretKey(`${SECRET}\n${SECRET}`, src), /more than one line/, SECRET);
  // A secret key whose public half was swapped: corrupt.
  const wrongPub =
    'demo-1:' + Buffer.concat([Buffer.alloc(32, 7), Buffer.alloc(32, 1)]).toString('base64');
  keyError(() => parseSecretKey(wrongPub, src), /public half does not belong/, wrongPub);
  keyError(() => parsePublicKey(SECRET, src), /decodes to 64 bytes, not 32/, SECRET);
  keyError(() => parsePublicKey('demo-1', src), /no ":"/);
});
