/**
 * Coordination objects in the bucket, so pushes and prunes on different machines agree
 * without a server (the README's "Leases" section has the protocol and its argument):
 *
 *   loft/leases/<id>.json         a push's lease: the narinfos and NARs it relies on or writes
 *   loft/prune-intents/<id>.json  a prune's intent: the narinfos and NARs it may delete
 *
 * Both expire `ttlSeconds` after their LastModified; the writer rewrites them well before.
 * Expiry is judged against server time only (a LastModified the reader wrote itself just
 * before), so the machines' clocks never enter the argument. The keys have a `/`, so the
 * root listing of the cache never sees them and prune leaves them alone as unknown keys.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { LoftError } from '../util/errors.js';
import { mapLimit } from '../util/limit.js';
import type { BlobStore } from './port.js';

export const LEASE_PREFIX = 'loft/leases/';
export const INTENT_PREFIX = 'loft/prune-intents/';

/** How long a push's lease protects what it names without being rewritten. */
export const DEFAULT_LEASE_TTL_MS = 5 * 60_000;
/** How long a prune's intent holds pushes back without being rewritten. */
export const DEFAULT_INTENT_TTL_MS = 5 * 60_000;
/**
 * LastModified is truncated to the second (HTTP dates), so a written object may look up to
 * this much older than it is.
 */
export const LAST_MODIFIED_SLACK_MS = 1000;

export type CoordKind = 'loft-lease' | 'loft-prune-intent';

/** A lease or an intent as stored. */
export interface CoordBody {
  type: CoordKind;
  version: 1;
  ttlSeconds: number;
  /** For people (`host pid`): who wrote it. */
  owner: string;
  /** Hash parts of the narinfos it names. */
  narInfos: string[];
  /** NAR keys it names. */
  nars: string[];
}

export interface CoordObject extends CoordBody {
  key: string;
  lastModified: Date;
}

const HASH_PART = /^[0-9abcdfghijklmnpqrsvwxyz]{32}$/;
const NAR_KEY = /^nar\/[0-9abcdfghijklmnpqrsvwxyz]{52}\.nar(\.[a-z0-9]+)?$/;
const MAX_TTL_SECONDS = 24 * 3600;

/**
 * The JSON object of a stored coordination object (lease, intent, pin) with its `type` and
 * `version` checked; a string saying what is wrong when it is malformed.
 */
export function parseTypedJson(text: string, type: string): Record<string, unknown> | string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  if (typeof v !== 'object' || v === null) return 'not a JSON object';
  const o = v as Record<string, unknown>;
  if (o.type !== type) return `"type" is ${JSON.stringify(o.type)}, expected "${type}"`;
  if (o.version !== 1) return `"version" is ${JSON.stringify(o.version)}, expected 1`;
  return o;
}

/** Parse a stored lease or intent; a string saying what is wrong when it is malformed. */
export function parseCoordBody(text: string, kind: CoordKind): CoordBody | string {
  const o = parseTypedJson(text, kind);
  if (typeof o === 'string') return o;
  const ttl = o.ttlSeconds;
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0 || ttl > MAX_TTL_SECONDS) {
    return `"ttlSeconds" is ${JSON.stringify(ttl)}, expected a number of seconds from 0 to ${MAX_TTL_SECONDS}`;
  }
  const strings = (field: string, re: RegExp): string[] | string => {
    const a = o[field];
    if (!Array.isArray(a)) return `"${field}" is not an array`;
    for (const s of a) {
      if (typeof s !== 'string' || !re.test(s)) {
        return `"${field}" holds ${JSON.stringify(s)}, which is not a ${field === 'nars' ? 'NAR key' : 'store path hash part'}`;
      }
    }
    return a as string[];
  };
  const narInfos = strings('narInfos', HASH_PART);
  if (typeof narInfos === 'string') return narInfos;
  const nars = strings('nars', NAR_KEY);
  if (typeof nars === 'string') return nars;
  return {
    type: kind,
    version: 1,
    ttlSeconds: ttl,
    owner: typeof o.owner === 'string' ? o.owner : '',
    narInfos,
    nars,
  };
}

/**
 * Whether a stored object had expired at a moment known (by server time) to be at least
 * `serverNowAtLeast`. A lease or intent that may still be live counts as live.
 */
export function isExpired(o: CoordObject, serverNowAtLeast: number): boolean {
  return o.lastModified.getTime() + o.ttlSeconds * 1000 + LAST_MODIFIED_SLACK_MS < serverNowAtLeast;
}

export interface CoordReading {
  objects: CoordObject[];
  /** Keys that could not be read as one: skipped, with what is wrong. */
  malformed: { key: string; problem: string }[];
}

/**
 * Every object under `prefix`, read and parsed; objects gone meanwhile are left out, and
 * those `parse` refuses are reported with what is wrong.
 */
export async function readParsedObjects<T>(
  blobs: BlobStore,
  prefix: string,
  parse: (text: string, key: string, lastModified: Date) => T | string,
): Promise<{ objects: T[]; malformed: { key: string; problem: string }[] }> {
  const listed = [];
  for await (const o of blobs.list(prefix)) listed.push(o);
  const objects: T[] = [];
  const malformed: { key: string; problem: string }[] = [];
  await mapLimit(listed, 16, async (o) => {
    const body = await blobs.get(o.key);
    if (body === undefined) return;
    const parsed = parse(body.toString('utf8'), o.key, o.lastModified);
    if (typeof parsed === 'string') malformed.push({ key: o.key, problem: parsed });
    else objects.push(parsed);
  });
  malformed.sort((a, b) => (a.key < b.key ? -1 : 1));
  return { objects, malformed };
}

/** Every lease (or intent) in the bucket, parsed. */
export function readCoordObjects(blobs: BlobStore, kind: CoordKind): Promise<CoordReading> {
  const prefix = kind === 'loft-lease' ? LEASE_PREFIX : INTENT_PREFIX;
  return readParsedObjects(blobs, prefix, (text, key, lastModified): CoordObject | string => {
    const parsed = parseCoordBody(text, kind);
    return typeof parsed === 'string' ? parsed : { ...parsed, key, lastModified };
  });
}

/** Our lease or intent could not be kept alive: stop before relying on it any further. */
export class CoordLapsedError extends LoftError {
  constructor(what: string, key: string, elapsedMs: number, cause?: unknown) {
    super(
      'COORD_LAPSED',
      'environment',
      `the ${what} ${key} was not renewed for ${Math.round(elapsedMs / 1000)} s; stopped before relying on it`,
      {
        hint: 'the bucket was slow or unreachable; run again (what was written is complete and consistent)',
        cause,
      },
    );
  }
}

export interface HeldOptions {
  ttlMs?: number;
  /** Between the hooks of tests: runs after each write of the object. */
  onWritten?: () => Promise<void> | void;
}

/**
 * A lease or intent this process holds: written, rewritten every ttl/5 while held, and
 * trusted only while the last successful write began less than ttl/2 ago (by the local
 * monotonic clock), which leaves half the ttl for requests in flight and the slack of
 * LastModified.
 */
export class HeldCoordObject {
  readonly key: string;
  readonly ttlMs: number;
  /** performance.now() when the last successful write began. */
  private writtenAt = -Infinity;
  /** Server time (LastModified) of the first write: a lower bound of server time after it. */
  serverTimeAtWrite = 0;
  /** performance.now() when the first write returned. */
  private firstReturnedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | undefined;
  private released = false;
  private lastError: unknown;

  private constructor(
    private readonly blobs: BlobStore,
    private readonly what: 'lease' | 'prune intent',
    private readonly body: CoordBody,
    private readonly opts: HeldOptions,
  ) {
    this.ttlMs = opts.ttlMs ?? (what === 'lease' ? DEFAULT_LEASE_TTL_MS : DEFAULT_INTENT_TTL_MS);
    const prefix = what === 'lease' ? LEASE_PREFIX : INTENT_PREFIX;
    this.key = `${prefix}${new Date().toISOString().replace(/[:.]/g, '')}-${randomBytes(6).toString('hex')}.json`;
  }

  /** Write the object and learn the server's time from its LastModified. */
  static async write(
    blobs: BlobStore,
    what: 'lease' | 'prune intent',
    names: { narInfos: Iterable<string>; nars: Iterable<string> },
    opts: HeldOptions = {},
  ): Promise<HeldCoordObject> {
    const [held] = await HeldCoordObject.writeThenRead(blobs, what, names, opts, async () => {});
    return held;
  }

  /**
   * Write the object, then run `read` (reads of the bucket that must come after the write)
   * alongside the HEAD that learns the server's time: one round trip instead of two.
   * `read` must only read, and must not rely on the server's time (it is known once both
   * are done). If the HEAD does not find the object, `read` is awaited and dropped.
   */
  static async writeThenRead<T>(
    blobs: BlobStore,
    what: 'lease' | 'prune intent',
    names: { narInfos: Iterable<string>; nars: Iterable<string> },
    opts: HeldOptions,
    read: () => Promise<T>,
  ): Promise<[HeldCoordObject, T]> {
    const ttlMs = opts.ttlMs ?? (what === 'lease' ? DEFAULT_LEASE_TTL_MS : DEFAULT_INTENT_TTL_MS);
    const body: CoordBody = {
      type: what === 'lease' ? 'loft-lease' : 'loft-prune-intent',
      version: 1,
      ttlSeconds: ttlMs / 1000,
      owner: `${hostname()} ${process.pid}`,
      narInfos: [...new Set(names.narInfos)].sort(),
      nars: [...new Set(names.nars)].sort(),
    };
    const held = new HeldCoordObject(blobs, what, body, { ...opts, ttlMs });
    await held.writeOnce();
    held.firstReturnedAt = performance.now();
    const every = Math.max(50, held.ttlMs / 5);
    held.timer = setInterval(() => void held.renew().catch(() => {}), every);
    held.timer.unref();
    try {
      const [head, readResult] = await Promise.allSettled([blobs.head(held.key), read()]);
      if (head.status === 'rejected') throw head.reason;
      if (head.value === undefined) {
        throw new LoftError(
          'COORD_NOT_VISIBLE',
          'environment',
          `the ${what} ${held.key} was written to ${blobs.description} but a HEAD right after does not find it`,
          { hint: 'Loft needs read-after-write consistency from the S3 server' },
        );
      }
      held.serverTimeAtWrite = head.value.lastModified.getTime();
      if (readResult.status === 'rejected') throw readResult.reason;
      return [held, readResult.value];
    } catch (e) {
      await held.release();
      throw e;
    }
  }

  /**
   * A lower bound of the server's time at local moment `at` (performance.now(), default now,
   * may be before the write): the server stamped the first write no later than it returned.
   */
  serverTimeAtLeast(at: number = performance.now()): number {
    return this.serverTimeAtWrite + (at - this.firstReturnedAt);
  }

  private async writeOnce(): Promise<void> {
    const started = performance.now();
    await this.blobs.put(this.key, JSON.stringify(this.body), {
      contentType: 'application/json',
    });
    this.writtenAt = started;
    await this.opts.onWritten?.();
  }

  /** Rewrite now (the timer does it every ttl/5), unless it has lapsed already. */
  renew(): Promise<void> {
    if (this.released) return Promise.resolve();
    if (!this.renewing) {
      this.renewing = (async () => {
        // Rewriting a lapsed object would make others trust it again after they may have
        // acted on its expiry: never.
        if (!this.isHeld()) return;
        try {
          await this.writeOnce();
          this.lastError = undefined;
        } catch (e) {
          this.lastError = e;
        }
      })().finally(() => {
        this.renewing = undefined;
      });
    }
    return this.renewing;
  }

  /** Whether others must still treat it as live for long enough to finish a request. */
  isHeld(): boolean {
    return !this.released && performance.now() - this.writtenAt < this.ttlMs / 2;
  }

  /** Throw unless held; call right before a write or delete that relies on it. */
  assertHeld(): void {
    if (!this.isHeld()) {
      throw new CoordLapsedError(
        this.what,
        this.key,
        performance.now() - this.writtenAt,
        this.lastError,
      );
    }
  }

  /** Stop renewing and delete it. Idempotent; a failed delete leaves it to expire. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    await this.renewing;
    try {
      await this.blobs.deleteMany([this.key]);
    } catch {
      // It expires on its own after ttl: nothing relies on its deletion.
    }
  }

  /** Stop renewing without deleting (tests: a crashed holder). */
  abandon(): void {
    this.released = true;
    clearInterval(this.timer);
  }
}
