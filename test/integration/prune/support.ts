/**
 * Support for prune's integration tests: synthetic narinfo graphs written with the raw SDK
 * client for large plans, and bucket inventories.
 */
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { encodeNix32 } from '../../../src/nix/nixbase32.js';
import type { SecretKey } from '../../../src/nix/signing.js';
import { push, type PushOptions, type PushResult } from '../../../src/upload/push.js';
import { openPushContext } from '../../support/push.js';
import { storeOptions } from '../../support/s3.js';
import { createS3Store } from '../../../src/storage/index.js';
import type { BlobStore } from '../../../src/storage/port.js';
import { policyFromSettings, type PrunePolicy } from '../../../src/prune/policy.js';
import { mapLimit } from '../../../src/util/limit.js';

export interface Inventory {
  keys: Set<string>;
  narInfos: string[];
  nars: string[];
  bytes: number;
  lastModified: Map<string, Date>;
}

/** Every object in the bucket, by the raw SDK client. */
export async function inventory(client: S3Client, bucket: string): Promise<Inventory> {
  const keys = new Set<string>();
  const lastModified = new Map<string, Date>();
  let bytes = 0;
  let token: string | undefined;
  do {
    const r = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }),
    );
    for (const o of r.Contents ?? []) {
      keys.add(o.Key!);
      lastModified.set(o.Key!, o.LastModified!);
      if (
        o.Key !== 'nix-cache-info' &&
        (o.Key!.startsWith('nar/') || /\.(narinfo|ls)$/.test(o.Key!))
      ) {
        bytes += o.Size ?? 0;
      }
    }
    token = r.NextContinuationToken;
  } while (token);
  const all = [...keys];
  return {
    keys,
    narInfos: all.filter((k) => k.endsWith('.narinfo')),
    nars: all.filter((k) => k.startsWith('nar/')),
    bytes,
    lastModified,
  };
}

/** LastModified of one object, as HEAD reports it. */
export async function lastModifiedOf(client: S3Client, bucket: string, key: string): Promise<Date> {
  const r = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  return r.LastModified!;
}

export const hashPartOfPath = (p: string) =>
  p.slice('/nix/store/'.length, '/nix/store/'.length + 32);

export function sleepMs(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Write a synthetic cache of `n` paths (no Nix involved: a graph for large plans): path i
 * references up to three of the paths before it, has a tiny NAR and a well-formed narinfo.
 * Returns the hash parts, in order.
 */
export async function writeSyntheticCache(
  client: S3Client,
  bucket: string,
  n: number,
): Promise<string[]> {
  const hps = Array.from({ length: n }, () => encodeNix32(randomBytes(20)));
  const bodies: { key: string; body: string }[] = [];
  for (let i = 0; i < n; i++) {
    const refs = new Set<number>();
    for (let j = 0; j < 3 && i > 0; j++) refs.add(Math.floor(Math.random() * i));
    const narHash = encodeNix32(randomBytes(32));
    const url = `nar/${narHash}.nar`;
    const refNames = [...refs].sort().map((r) => `${hps[r]}-synthetic-${r}`);
    bodies.push({ key: url, body: `nar ${i}\n` });
    bodies.push({
      key: `${hps[i]}.narinfo`,
      body:
        `StorePath: /nix/store/${hps[i]}-synthetic-${i}\n` +
        `URL: ${url}\nCompression: none\n` +
        `NarHash: sha256:${narHash}\nNarSize: 6\n` +
        `References: ${refNames.join(' ')}\n`,
    });
  }
  // NARs first, then narinfos referrers-last (index order), like a real push.
  const nars = bodies.filter((b) => b.key.startsWith('nar/'));
  const infos = bodies.filter((b) => !b.key.startsWith('nar/'));
  const put = (b: { key: string; body: string }) =>
    client.send(new PutObjectCommand({ Bucket: bucket, Key: b.key, Body: b.body }));
  await mapLimit(nars, 32, put);
  for (let i = 0; i < infos.length; i += 32) await Promise.all(infos.slice(i, i + 32).map(put));
  return hps;
}

/**
 * The closure invariant, checked deeply and independently of Loft's code: every narinfo
 * (read with a few regular expressions, not Loft's parser) has its NAR object with exactly
 * FileSize bytes hashing to FileHash, that object decompresses (with the zstd or xz tool)
 * to NarSize bytes hashing to NarHash, and every reference has a narinfo. Narinfos are
 * listed first and the bucket again after reading them, as in checkCacheIntegrity.
 */
export async function checkDeepIntegrity(
  client: S3Client,
  bucket: string,
): Promise<{ narInfos: number; problems: string[] }> {
  const first = await inventory(client, bucket);
  const texts = await mapLimit(first.narInfos, 16, async (k) => {
    try {
      const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: k }));
      return [k, await r.Body!.transformToString()] as const;
    } catch (e) {
      return [k, undefined, (e as Error).message] as const;
    }
  });
  const present = (await inventory(client, bucket)).keys;
  const problems: string[] = [];
  await mapLimit(texts, 8, async ([key, text, err]) => {
    if (text === undefined) return void problems.push(`${key}: unreadable: ${err}`);
    const field = (name: string) => new RegExp(`^${name}: (.*)$`, 'm').exec(text)?.[1];
    const url = field('URL');
    const compression = field('Compression') ?? 'bzip2';
    if (!url || !present.has(url)) return void problems.push(`${key}: NAR ${url} is missing`);
    const refs = (field('References') ?? '').split(' ').filter((r) => r !== '');
    for (const ref of refs) {
      if (!present.has(`${ref.slice(0, 32)}.narinfo`)) {
        problems.push(`${key}: reference ${ref} has no narinfo`);
      }
    }
    const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: url }));
    const file = Buffer.from(await r.Body!.transformToByteArray());
    const sha = (b: Buffer) => `sha256:${encodeNix32(createHash('sha256').update(b).digest())}`;
    if (field('FileSize') !== undefined && Number(field('FileSize')) !== file.length) {
      problems.push(`${key}: FileSize ${field('FileSize')}, the object has ${file.length} bytes`);
    }
    if (field('FileHash') !== undefined && field('FileHash') !== sha(file)) {
      problems.push(`${key}: FileHash ${field('FileHash')} differs from the object's ${sha(file)}`);
    }
    const tools: Record<string, string[] | undefined> = {
      zstd: ['zstd', '-dc'],
      xz: ['xz', '-dc'],
      none: undefined,
    };
    if (!(compression in tools)) {
      return void problems.push(`${key}: unexpected compression ${compression}`);
    }
    const tool = tools[compression];
    const nar = tool ? execFileSync(tool[0]!, tool.slice(1), { input: file }) : file;
    if (Number(field('NarSize')) !== nar.length) {
      problems.push(`${key}: NarSize ${field('NarSize')}, the NAR has ${nar.length} bytes`);
    }
    if (field('NarHash') !== sha(nar)) {
      problems.push(`${key}: NarHash ${field('NarHash')} differs from the NAR's ${sha(nar)}`);
    }
  });
  return { narInfos: first.narInfos.length, problems: problems.sort() };
}

/** Push `roots` with the real pipeline (daemon, RGW), as one machine would. */
export async function pushRoots(
  cache: { bucket: string; key: SecretKey },
  roots: string[],
  opts: Partial<PushOptions> = {},
): Promise<PushResult> {
  const ctx = await openPushContext({ bucket: cache.bucket, key: cache.key });
  try {
    return await push(ctx, roots, { uploadThreads: 2, skipSignedByKeys: [], ...opts });
  } finally {
    await ctx.close();
  }
}

/** Run `fn` with a BlobStore on the test bucket, closed afterwards. */
export async function withStore<T>(
  cache: { bucket: string },
  fn: (blobs: BlobStore) => Promise<T>,
): Promise<T> {
  const blobs = createS3Store(storeOptions(cache.bucket));
  try {
    return await fn(blobs);
  } finally {
    await blobs.close();
  }
}

/** A size cap (one byte) below anything, no grace period: every unprotected closure goes. */
export function tinyCapPolicy(): PrunePolicy {
  return policyFromSettings({
    retentionDays: 30,
    maxSizeBytes: 1,
    targetPercentage: 100,
    graceMinutes: 0,
  });
}
