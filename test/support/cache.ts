/**
 * Binary-cache test support: public buckets real Nix can substitute from, substitution
 * into a throwaway store with signatures required, and an integrity walk that checks the
 * closure invariant of a whole bucket (every narinfo's NAR, with its size and hash, and
 * its references exist).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PutBucketPolicyCommand, type S3Client } from '@aws-sdk/client-s3';
import { generateKeyPair, type SecretKey } from '../../src/nix/signing.js';
import { createBucket, hashObject, listKeysRaw, s3TestEnv, testS3Client } from './s3.js';
import { freshStoreRoot, runNix } from './nix.js';
import { GetObjectCommand } from '@aws-sdk/client-s3';

export interface TestCache {
  client: S3Client;
  bucket: string;
  /** Where a Nix client reads it: http://127.0.0.1:PORT/BUCKET */
  url: string;
  key: SecretKey;
  publicKey: string;
}

/** A bucket anyone may read (so Nix 2.8 can substitute over HTTP) and a fresh key pair. */
export async function makePublicCache(tag: string, keyName = 'loft-test-1'): Promise<TestCache> {
  const env = s3TestEnv();
  const client = testS3Client(env);
  const bucket = await createBucket(client, tag);
  await client.send(
    new PutBucketPolicyCommand({
      Bucket: bucket,
      Policy: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Principal: '*',
            Action: ['s3:GetObject'],
            Resource: [`arn:aws:s3:::${bucket}/*`],
          },
        ],
      }),
    }),
  );
  const { secretKey, publicKey } = generateKeyPair(keyName);
  return {
    client,
    bucket,
    url: `${env.endpoint}/${bucket}`,
    key: secretKey,
    publicKey: publicKey.toString(),
  };
}

/**
 * Have real Nix substitute `paths` (and their closures) from the cache into an empty
 * store, with `require-sigs` on and only `publicKey` trusted. Returns the store root.
 */
export async function substituteFresh(
  url: string,
  publicKey: string,
  paths: string[],
): Promise<string> {
  const root = freshStoreRoot();
  await runNix(
    'nix-store',
    [
      '--store',
      root,
      '--realise',
      ...paths,
      '--option',
      'substituters',
      url,
      '--option',
      'trusted-public-keys',
      publicKey,
      '--option',
      'require-sigs',
      'true',
      '--option',
      'narinfo-cache-negative-ttl',
      '0',
      '--option',
      'narinfo-cache-positive-ttl',
      '0',
    ],
    undefined,
    // Nix 2.8 keeps one narinfo cache per user, and two substitutions from the same URL at
    // once can break it ("constraint failed" when one re-registers the cache under the
    // other): each fresh store gets its own.
    { XDG_CACHE_HOME: join(root, '.cache') },
  );
  return root;
}

async function getText(client: S3Client, bucket: string, key: string): Promise<string> {
  const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return r.Body!.transformToString();
}

export interface IntegrityReport {
  narInfos: number;
  problems: string[];
}

/** Nix's base-32 (as `nix hash to-base32` prints), written here so the oracle does not use Loft's. */
function toNix32(bytes: Buffer): string {
  const alphabet = '0123456789abcdfghijklmnpqrsvwxyz';
  const len = Math.ceil((bytes.length * 8) / 5);
  let out = '';
  for (let n = len - 1; n >= 0; n--) {
    const b = n * 5;
    const i = Math.floor(b / 8);
    const j = b % 8;
    const c = (bytes[i]! >> j) | (i + 1 < bytes.length ? bytes[i + 1]! << (8 - j) : 0);
    out += alphabet[c & 0x1f];
  }
  return out;
}

/** A narinfo's fields, read line by line (not with Loft's parser, which is under test). */
function narInfoFields(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const i = line.indexOf(': ');
    if (i <= 0) throw new Error(`line ${JSON.stringify(line)} is not "Key: value"`);
    fields.set(line.slice(0, i), line.slice(i + 2));
  }
  for (const k of ['StorePath', 'URL', 'NarHash', 'NarSize']) {
    if (!fields.has(k)) throw new Error(`no ${k} field`);
  }
  return fields;
}

/**
 * The closure invariant, checked over a whole bucket: every narinfo has the fields a
 * client needs, its NAR object exists with the narinfo's FileSize and FileHash when it
 * states them (size and SHA-256 of the object's bytes as the server returns them), and
 * every reference has a narinfo (unless `upstream` says it is served elsewhere). Narinfos
 * are read before the second listing, so anything a narinfo points at was written before
 * it and must be listed. NarHash is left to real Nix (substituteFresh), which checks it on unpacking.
 */
export async function checkCacheIntegrity(
  client: S3Client,
  bucket: string,
  upstream: (basename: string) => boolean = () => false,
): Promise<IntegrityReport> {
  const narInfoKeys = (await listKeysRaw(client, bucket)).filter((k) => /^[^/]+\.narinfo$/.test(k));
  const problems: string[] = [];
  const texts = await Promise.all(
    narInfoKeys.map((k) => getText(client, bucket, k).then((t) => [k, t] as const)),
  );
  const present = new Set(await listKeysRaw(client, bucket));
  for (const [key, text] of texts) {
    let f: Map<string, string>;
    try {
      f = narInfoFields(text);
    } catch (e) {
      problems.push(`${key}: does not parse: ${(e as Error).message}`);
      continue;
    }
    const url = f.get('URL')!;
    if (!present.has(url)) {
      problems.push(`${key}: NAR ${url} is missing`);
    } else {
      // FileSize and FileHash are optional in Nix's format (Loft always writes them; tests
      // that fake narinfos may not): checked whenever a narinfo states them.
      const stored = await hashObject(client, bucket, url);
      if (f.has('FileSize') && String(stored.size) !== f.get('FileSize')) {
        problems.push(`${key}: FileSize ${f.get('FileSize')} but ${url} has ${stored.size} bytes`);
      }
      const digest = Buffer.from(stored.sha256, 'hex');
      const fileHash = f.get('FileHash');
      if (
        fileHash !== undefined &&
        fileHash !== `sha256:${toNix32(digest)}` &&
        fileHash !== `sha256:${stored.sha256}`
      ) {
        problems.push(
          `${key}: FileHash ${fileHash} but ${url} hashes to sha256:${toNix32(digest)}`,
        );
      }
    }
    const refs = (f.get('References') ?? '').split(' ').filter((r) => r !== '');
    for (const ref of refs) {
      const hp = ref.slice(0, 32);
      if (!present.has(`${hp}.narinfo`) && !upstream(ref)) {
        problems.push(`${key}: reference ${ref} has no narinfo`);
      }
    }
  }
  return { narInfos: narInfoKeys.length, problems };
}

export { testS3Client };

/**
 * The bucket holds exactly `narInfos` narinfos, each with its NAR and references, and real
 * Nix substitutes `roots` from it into an empty store with require-sigs.
 */
export async function assertCacheServes(
  cache: TestCache,
  narInfos: number,
  roots: string[],
): Promise<void> {
  const report = await checkCacheIntegrity(cache.client, cache.bucket);
  assert.deepEqual(report.problems, []);
  assert.equal(report.narInfos, narInfos);
  await substituteFresh(cache.url, cache.publicKey, roots);
}
