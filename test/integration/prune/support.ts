/**
 * Support for prune's integration tests: synthetic narinfo graphs written with the raw SDK
 * client for large plans, and bucket inventories.
 */
import { randomBytes } from 'node:crypto';
import {
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { encodeNix32 } from '../../../src/nix/nixbase32.js';
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
