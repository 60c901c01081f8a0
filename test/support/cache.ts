/**
 * Binary-cache test support: public buckets real Nix can substitute from, substitution
 * into a throwaway store with signatures required, and an integrity walk that checks the
 * closure invariant of a whole bucket (every narinfo's NAR and references exist).
 */
import { PutBucketPolicyCommand, type S3Client } from '@aws-sdk/client-s3';
import { generateKeyPair, type SecretKey } from '../../src/nix/signing.js';
import { parseNarInfo } from '../../src/nix/narinfo.js';
import { createBucket, listKeysRaw, s3TestEnv, testS3Client } from './s3.js';
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
  await runNix('nix-store', [
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
  ]);
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

/**
 * The closure invariant, checked over a whole bucket: every narinfo parses, its NAR
 * object exists, and every reference has a narinfo (unless `upstream` says it is served
 * elsewhere). Listing happens first, so a narinfo written during the walk is seen only if
 * its own checks can be made against what was listed or fetched after it.
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
  // List again after reading: anything a narinfo points at was written before the narinfo,
  // so it must be in this later listing.
  const present = new Set(await listKeysRaw(client, bucket));
  for (const [key, text] of texts) {
    let info;
    try {
      info = parseNarInfo(text);
    } catch (e) {
      problems.push(`${key}: does not parse: ${(e as Error).message}`);
      continue;
    }
    if (!present.has(info.url)) problems.push(`${key}: NAR ${info.url} is missing`);
    for (const ref of info.references) {
      const hp = ref.slice(0, 32);
      if (!present.has(`${hp}.narinfo`) && !upstream(ref)) {
        problems.push(`${key}: reference ${ref} has no narinfo`);
      }
    }
  }
  return { narInfos: narInfoKeys.length, problems };
}

export { testS3Client };
