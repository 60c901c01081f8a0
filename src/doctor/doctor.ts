/**
 * `--doctor`: every thing Loft needs from this machine and its S3 provider, checked one by
 * one, each giving OK with what it found or what is wrong and what to do. A check that
 * needs one that failed is skipped, naming it. The checks are a list of values (name,
 * what it needs, run); `runDoctor` is the executor.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { describeError, LoftError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { parseSecretKey } from '../nix/signing.js';
import { parseCacheInfo } from '../nix/cache-info.js';
import { daemonTransportOf, readSigningKey, type LoftConfig } from '../config/index.js';
import { LocalStore } from '../store/local-store.js';
import type { BlobStore } from '../storage/port.js';
import { CACHE_INFO_KEY } from '../storage/keys.js';

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skipped';

export interface CheckResult {
  name: string;
  status: CheckStatus;
  /** What was found (ok, warn) or what is wrong (fail), or which check it needed (skipped). */
  detail: string;
  hint?: string;
}

/** A warning: Loft works, but the user should know. */
class Warn extends Error {}

export interface DoctorDeps {
  config: LoftConfig;
  logger: Logger;
  env: Record<string, string | undefined>;
  /** Opens the bucket (S3 by default); tests may point it elsewhere. */
  openBlobs: () => Promise<BlobStore>;
  /** The server's clock, from the Date header of a plain request to the endpoint. */
  serverDate: () => Promise<Date | undefined>;
  /** S3 requests the bucket made so far (operation, status), when the store reports them. */
  requests?: readonly { operation: string; status: string }[];
  now?: () => Date;
}

interface State {
  store?: LocalStore;
  blobs?: BlobStore;
  scratch: string;
}

interface Check {
  name: string;
  needs: string[];
  run(s: State, d: DoctorDeps): Promise<string>;
}

/** Skew SigV4 tolerates is 15 minutes; warn well before that. */
const SKEW_WARN_MS = 60_000;
const SKEW_FAIL_MS = 10 * 60_000;
/** Sequential HEAD and GET pairs timed on one connection. */
const LATENCY_ROUNDS = 5;
/**
 * A GET slower than a HEAD of the same small object by more than this has its body held
 * back by the server: a delayed ACK costs about 40 ms on Linux, and nothing else in a
 * small GET on an open connection comes close.
 */
const HELD_BODY_MS = 25;
/** Just over one 8 MiB part, so the store must use a multipart upload. */
const MULTIPART_BYTES = 8 * 1024 * 1024 + 1;

const CHECKS: Check[] = [
  {
    name: 'signing key',
    needs: [],
    async run(_s, d) {
      const text = await readSigningKey(d.config);
      if (text === undefined) {
        throw new Warn(
          'not set: narinfos will be unsigned, and Nix with require-sigs will not use them',
        );
      }
      const key = parseSecretKey(text.reveal(), text.path);
      return `${key.name} (public key ${key.publicKey().toString()})`;
    },
  },
  {
    name: 'nix-daemon',
    needs: [],
    async run(s, d) {
      s.store = await LocalStore.open({
        ...daemonTransportOf(d.config),
        env: d.env,
        maxConnections: 1,
        logger: d.logger,
      });
      const i = s.store.daemonInfo;
      return (
        `${s.store.endpoint}: protocol 1.${i.version & 0xff}` +
        `${i.daemonNixVersion ? `, Nix ${i.daemonNixVersion}` : ''}, store ${s.store.storeDir}`
      );
    },
  },
  {
    name: 'bucket (credentials, region, endpoint)',
    needs: [],
    async run(s, d) {
      s.blobs = await d.openBlobs();
      await s.blobs.check();
      return `${s.blobs.description} answers`;
    },
  },
  {
    name: 'clock skew',
    needs: [],
    async run(_s, d) {
      const server = await d.serverDate();
      if (server === undefined) throw new Warn('the endpoint sent no Date header; not checked');
      const skew = (d.now ?? (() => new Date()))().getTime() - server.getTime();
      const text = `${Math.round(skew / 1000)} s against the server's Date header`;
      if (Math.abs(skew) > SKEW_FAIL_MS) {
        throw new LoftError('DOCTOR_CLOCK_SKEW', 'environment', text, {
          hint: 'S3 refuses requests signed more than 15 minutes off: sync this clock (NTP)',
        });
      }
      if (Math.abs(skew) > SKEW_WARN_MS) throw new Warn(`${text}: sync this clock (NTP)`);
      return text;
    },
  },
  {
    name: 'PUT, GET, HEAD of a scratch object',
    needs: ['bucket (credentials, region, endpoint)'],
    async run(s) {
      const blobs = s.blobs!;
      const body = `loft --doctor ${s.scratch}\n`;
      await blobs.put(s.scratch, body, { contentType: 'text/plain' });
      const got = await blobs.get(s.scratch);
      if (got?.toString('utf8') !== body)
        throw new Error(`GET returned other bytes than PUT stored`);
      const head = await blobs.head(s.scratch);
      if (head?.size !== Buffer.byteLength(body))
        throw new Error(`HEAD reports size ${head?.size}`);
      return `${s.scratch}`;
    },
  },
  {
    name: 'small answers on a reused connection',
    needs: ['PUT, GET, HEAD of a scratch object'],
    async run(s) {
      const blobs = s.blobs!;
      const time = async (f: () => Promise<unknown>) => {
        const t0 = performance.now();
        await f();
        return performance.now() - t0;
      };
      // One after another, so each goes on the connection the last one left free; a fresh
      // connection acknowledges at once and would hide the delay.
      const gets: number[] = [];
      const heads: number[] = [];
      for (let i = 0; i < LATENCY_ROUNDS; i++) {
        heads.push(await time(() => blobs.head(s.scratch)));
        gets.push(await time(() => blobs.get(s.scratch)));
      }
      const get = Math.round(median(gets));
      const head = Math.round(median(heads));
      const text = `GET ${get} ms, HEAD ${head} ms (medians of ${LATENCY_ROUNDS}, one connection)`;
      if (get - head > HELD_BODY_MS) {
        throw new Warn(
          `${text}: the server holds an answer's body back until this machine acknowledges its headers (Nagle's algorithm on the server against delayed ACKs here), so every small GET and listing waits about 40 ms more; for Ceph RGW add tcp_nodelay=1 to "rgw frontends"`,
        );
      }
      return text;
    },
  },
  {
    name: 'multipart upload',
    needs: ['PUT, GET, HEAD of a scratch object'],
    async run(s) {
      const r = await s.blobs!.upload(`${s.scratch}.multipart`, zeros(MULTIPART_BYTES));
      if (!r.multipart || r.parts < 2)
        throw new Error(`the store sent ${r.parts} part(s) without multipart`);
      return `${r.parts} parts, ${r.size} bytes`;
    },
  },
  {
    name: 'server-side copy (refresh-on-use)',
    needs: ['PUT, GET, HEAD of a scratch object'],
    async run(s) {
      await s.blobs!.copy(s.scratch, `${s.scratch}.copy`);
      const head = await s.blobs!.head(`${s.scratch}.copy`);
      if (head === undefined) throw new Error('the copy does not exist after CopyObject succeeded');
      return 'CopyObject works';
    },
  },
  {
    name: 'DELETE and batch delete (prune)',
    needs: ['PUT, GET, HEAD of a scratch object'],
    async run(s, d) {
      const keys = [s.scratch, `${s.scratch}.copy`, `${s.scratch}.multipart`];
      const before = d.requests?.length ?? 0;
      await s.blobs!.deleteMany(keys);
      const left = [];
      for (const k of keys) if ((await s.blobs!.head(k)) !== undefined) left.push(k);
      if (left.length > 0) throw new Error(`still there after the delete: ${left.join(', ')}`);
      const made = d.requests?.slice(before) ?? [];
      if (made.some((r) => r.operation === 'DeleteObject')) {
        // The store falls back to single deletes when the server refuses a batch.
        throw new Warn(
          'the server refused batch DeleteObjects; Loft deletes one by one (slower prunes)',
        );
      }
      return made.some((r) => r.operation === 'DeleteObjects')
        ? 'batch DeleteObjects works; scratch objects deleted'
        : 'scratch objects deleted';
    },
  },
  {
    name: 'extra headers',
    needs: [],
    async run(_s, d) {
      const names = Object.keys(d.config.s3.extraHeaders.toRecord());
      return names.length === 0 ? 'none' : `${names.join(', ')} (names only)`;
    },
  },
  {
    name: 'nix-cache-info',
    needs: ['nix-daemon', 'bucket (credentials, region, endpoint)'],
    async run(s) {
      const text = await s.blobs!.get(CACHE_INFO_KEY);
      if (text === undefined) return 'not there yet; the first push writes it';
      const dir = parseCacheInfo(text.toString('utf8')).storeDir;
      if (dir !== s.store!.storeDir) {
        throw new LoftError(
          'DOCTOR_CACHE_INFO',
          'environment',
          `StoreDir is ${dir ?? 'missing'}, the local store is ${s.store!.storeDir}`,
          { hint: 'this bucket holds a cache for another store directory: use another bucket' },
        );
      }
      return `StoreDir ${dir} matches the local store`;
    },
  },
];

/** The middle value (the upper one of an even count). */
function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

async function* zeros(n: number): AsyncIterable<Uint8Array> {
  const chunk = Buffer.alloc(1024 * 1024);
  for (let left = n; left > 0; left -= chunk.length) {
    yield left >= chunk.length ? chunk : chunk.subarray(0, left);
  }
}

export async function runDoctorChecks(d: DoctorDeps): Promise<CheckResult[]> {
  const s: State = { scratch: `loft-doctor/${randomBytes(6).toString('hex')}` };
  const results: CheckResult[] = [{ name: 'configuration', status: 'ok', detail: d.config.source }];
  const byName = new Map<string, CheckResult>();
  try {
    for (const c of CHECKS) {
      const missing = c.needs.find(
        (n) => byName.get(n)?.status !== 'ok' && byName.get(n)?.status !== 'warn',
      );
      let r: CheckResult;
      if (missing !== undefined) {
        r = { name: c.name, status: 'skipped', detail: `needs "${missing}"` };
      } else {
        try {
          r = { name: c.name, status: 'ok', detail: await c.run(s, d) };
        } catch (e) {
          r =
            e instanceof Warn
              ? { name: c.name, status: 'warn', detail: e.message }
              : {
                  name: c.name,
                  status: 'fail',
                  detail: (e instanceof LoftError ? e.message : describeError(e)).replace(
                    /\n\s*/g,
                    ' ',
                  ),
                  ...(e instanceof LoftError && e.hint ? { hint: e.hint } : {}),
                };
        }
      }
      byName.set(c.name, r);
      results.push(r);
    }
  } finally {
    await Promise.allSettled([s.store?.close(), s.blobs?.close()]);
  }
  return results;
}
