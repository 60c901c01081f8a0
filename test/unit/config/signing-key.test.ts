import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  readSigningKey,
  resolveSigningKeyText,
  SigningKeyText,
} from '../../../src/config/signing-key.js';
import { SigningKeyError } from '../../../src/config/errors.js';
import { parseSecretKey } from '../../../src/nix/signing.js';

// Made by `nix-store --generate-binary-cache-key loft-test-1 sk pk` (Nix 2.8) for this test
// only; it signs nothing real. Note: no trailing newline, as Nix writes it.
const NIX_KEY =
  'loft-test-1:y2ggaEqvI/H9Df6akg41E4nKwJePVcErnlSFxw0OGJ7M30wx6ScM/GRiMnn0E2Zv+ea11A13kxNcs2AsvVNH3w==';
const B64 = NIX_KEY.slice('loft-test-1:'.length);
const PATH = '/run/secrets/key';

function expectKeyError(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof SigningKeyError, String(e));
    assert.equal(e.code, 'config.signing-key');
    assert.equal(e.kind, 'config');
    assert.match(e.message, message);
    assert.ok(e.message.includes(PATH), 'names the file');
    assert.ok(!e.message.includes(B64) && !(e.hint ?? '').includes(B64), 'leaks the key');
    assert.ok(!inspect(e, { depth: 10 }).includes(B64));
    assert.ok(e.hint);
    return true;
  });
}

test('a Nix key file names itself; signing_key_name may be unset', () => {
  const k = resolveSigningKeyText(`${NIX_KEY}\n`, { path: PATH, configuredName: undefined });
  assert.equal(k.name, 'loft-test-1');
  assert.equal(k.path, PATH);
  assert.equal(k.reveal(), NIX_KEY, 'trailing newline trimmed, text kept');
});

test('signing_key_name equal to the file name is accepted', () => {
  const k = resolveSigningKeyText(NIX_KEY, { path: PATH, configuredName: 'loft-test-1' });
  assert.equal(k.name, 'loft-test-1');
});

test('signing_key_name different from the file name is an error naming both', () => {
  expectKeyError(
    () => resolveSigningKeyText(NIX_KEY, { path: PATH, configuredName: 'nix-cache' }),
    /signing_key_name is "nix-cache" but the key in \/run\/secrets\/key is named "loft-test-1"/,
  );
});

test('a bare base64 key takes signing_key_name as its name, and needs it', () => {
  const k = resolveSigningKeyText(`${B64}\n`, { path: PATH, configuredName: 'nix-cache' });
  assert.equal(k.name, 'nix-cache');
  assert.equal(k.reveal(), `nix-cache:${B64}`);
  expectKeyError(
    () => resolveSigningKeyText(B64, { path: PATH, configuredName: undefined }),
    /has no key name \(bare base64\)/,
  );
});

test('malformed key files are errors that never quote the key', () => {
  expectKeyError(
    () => resolveSigningKeyText('', { path: PATH, configuredName: undefined }),
    /is empty/,
  );
  expectKeyError(
    () =>
      resolveSigningKeyText(`loft-test-1:${B64.slice(0, 40)}`, {
        path: PATH,
        configuredName: undefined,
      }),
    /does not hold a 64-byte base64 key/,
  );
  expectKeyError(
    () => resolveSigningKeyText(`:${B64}`, { path: PATH, configuredName: undefined }),
    /empty key name/,
  );
  expectKeyError(
    () =>
      resolveSigningKeyText(`loft-test-1:${B64.slice(0, 20)} ${B64.slice(20)}`, {
        path: PATH,
        configuredName: undefined,
      }),
    /whitespace/,
  );
  // A public key (32 bytes) given by mistake: named as such (see the test below).
  expectKeyError(
    () =>
      resolveSigningKeyText('loft-test-1:zN9MMeknDPxkYjJ59BNmb/nmtdQNd5MTXLNgLL1TR98=', {
        path: PATH,
        configuredName: undefined,
      }),
    /holds a public key/,
  );
});

test('SigningKeyText keeps the key out of inspect, JSON and String', () => {
  const k = resolveSigningKeyText(NIX_KEY, { path: PATH, configuredName: undefined });
  assert.ok(k instanceof SigningKeyText);
  for (const shown of [
    inspect(k),
    inspect({ k }, { depth: 5 }),
    JSON.stringify(k),
    String(k),
    `${k}`,
  ]) {
    assert.ok(!shown.includes(B64), shown);
    assert.ok(shown.includes('loft-test-1'), shown);
  }
});

test('readSigningKey reads the configured file; none configured means no signing', async () => {
  assert.equal(await readSigningKey({ signingKeyPath: undefined, signingKeyName: 'x' }), undefined);
  const dir = mkdtempSync(join(tmpdir(), 'loft-key-'));
  try {
    const file = join(dir, 'secret.key');
    writeFileSync(file, NIX_KEY, { mode: 0o600 });
    const k = await readSigningKey({ signingKeyPath: file, signingKeyName: undefined });
    assert.equal(k?.name, 'loft-test-1');
    await assert.rejects(
      readSigningKey({ signingKeyPath: join(dir, 'missing.key'), signingKeyName: undefined }),
      (e: unknown) =>
        e instanceof SigningKeyError &&
        e.message.includes(join(dir, 'missing.key')) &&
        /does not exist/.test(e.message) &&
        /nix-store --generate-binary-cache-key/.test(e.hint ?? ''),
    );
    await assert.rejects(
      readSigningKey(
        { signingKeyPath: file, signingKeyName: undefined },
        {
          readFile: () => Promise.reject(Object.assign(new Error('EACCES'), { code: 'EACCES' })),
        },
      ),
      (e: unknown) =>
        e instanceof SigningKeyError && /is not readable by this user/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the revealed text is what the signer parses, for named and bare key files', () => {
  // The public key Nix wrote next to NIX_KEY.
  const PUBLIC = 'loft-test-1:zN9MMeknDPxkYjJ59BNmb/nmtdQNd5MTXLNgLL1TR98=';
  const named = resolveSigningKeyText(NIX_KEY, { path: PATH, configuredName: undefined });
  const sk = parseSecretKey(named.reveal(), PATH);
  assert.equal(sk.name, 'loft-test-1');
  assert.equal(sk.publicKey().toString(), PUBLIC);
  const bare = resolveSigningKeyText(B64, { path: PATH, configuredName: 'other-1' });
  assert.equal(parseSecretKey(bare.reveal(), PATH).name, 'other-1');
});

test('a public key given as signing_key_path says it is the public key and which file to use', () => {
  // The public half of NIX_KEY, as `nix-store --generate-binary-cache-key` writes it.
  const pub = `loft-test-1:${Buffer.from(B64, 'base64').subarray(32).toString('base64')}`;
  for (const text of [pub, pub.slice('loft-test-1:'.length)]) {
    expectKeyError(
      () => resolveSigningKeyText(text, { path: PATH, configuredName: 'loft-test-1' }),
      /holds a public key \(32 bytes\), not the secret key that signs/,
    );
    try {
      resolveSigningKeyText(text, { path: PATH, configuredName: 'loft-test-1' });
    } catch (e) {
      assert.match((e as SigningKeyError).hint ?? '', /point signing_key_path at the secret file/);
      assert.match((e as SigningKeyError).hint ?? '', /trusted-public-keys/);
    }
  }
});
