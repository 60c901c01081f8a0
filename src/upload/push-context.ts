/**
 * What a push needs and what it returns: the context (store, storage, index, compression,
 * key), and its options split by who reads them: planning (preparePush), execution
 * (executePlan) and observation (events and progress, read by both).
 */
import type { Logger } from '../util/log.js';
import type { SecretKey } from '../nix/signing.js';
import type { Compression } from '../compress/index.js';
import type { NarPacker } from '../pack/index.js';
import type { LocalStore } from '../store/local-store.js';
import type { BlobStore } from '../storage/port.js';
import type { PushEvent, PushProgress } from './events.js';
import type { PlanSummary, PushPlan } from './plan.js';
import type { LeaseOptions } from './lease.js';

/** One path the cache has, as the pipeline records it in the local index. */
export interface PresentEntry {
  hashPart: string;
  storePath?: string;
  narinfoTime: number;
  /** pathInfoToJson() of the local path info (src/store/path-info.ts). */
  pathInfo?: string;
}

/** The local index as the pipeline uses it (LocalIndex fits): present paths of this cache. */
export interface PresenceIndex {
  getPresentMany(
    hashParts: Iterable<string>,
  ): Map<string, { narinfoTime: number; pruneMark?: string | undefined }>;
  /** Called only after the narinfo is in the cache (or was found there). */
  recordPresent(entries: readonly PresentEntry[]): void;
  /** Like getPresentMany, for those recorded with path info (JSON text), with it. */
  getPresentWithPathInfo?(
    hashParts: readonly string[],
  ): Map<string, { narinfoTime: number; pruneMark?: string | undefined; pathInfo: string }>;
  /** Attach path info to present paths recorded without one. */
  recordPathInfos?(entries: readonly { hashPart: string; pathInfo: string }[]): number;
  /** Paths found gone from the cache. */
  forgetPresent(hashParts: Iterable<string>): number;
  /**
   * Paths a push confirmed (or published) under its lease, with the bucket's prune mark it
   * read then (src/upload/settled.ts). Without it, every push takes the lease.
   */
  confirmPresent?(hashParts: Iterable<string>, pruneMark: string): number;
}

export interface PushContext {
  store: Pick<LocalStore, 'storeDir' | 'closure' | 'pathInfos' | 'narStream' | 'holdTempRoots'>;
  blobs: BlobStore;
  index: PresenceIndex | undefined;
  compression: Compression;
  compressionLevel: number | undefined;
  signingKey: SecretKey | undefined;
  logger: Logger;
  /**
   * Packs NARs from disk in worker threads (zstd and none), so the NAR never crosses the
   * main thread; without it, or when a path cannot be read from disk, NARs come from the
   * nix-daemon and are compressed in the compressor's streams.
   */
  packer?: NarPacker;
  /** Where the store's files are on disk, when not at the store dir (chroot stores). */
  realStoreDir?: string;
  /** Cache-Control stored with narinfos and with NARs/listings (cache_control_*). */
  cacheControl?: { narInfo?: string | undefined; nar?: string | undefined };
}

/** What planning reads: which paths to upload, which the cache has, which to refresh. */
export interface PlanningOptions {
  skipSignedByKeys: readonly string[];
  /** Ask the cache about every path instead of trusting the local index. */
  ignoreIndex?: boolean;
  /** Paths the include/exclude patterns keep out of the cache (see filter.ts). */
  exclude?: (storePath: string) => boolean;
  /**
   * Refresh-on-use: cached paths whose narinfo is older than this many ms are refreshed
   * (server-side copy onto itself) before anything is published, so pruning keeps what
   * this push relies on. Half the prune retention; undefined when pruning is off.
   */
  refreshAfterMs?: number;
  /** The clock (tests). */
  now?: () => Date;
}

/** What execution reads: how to upload, and when to stop. */
export interface ExecutionOptions {
  /** NARs in flight at once, across all paths. */
  uploadThreads: number;
  /** The lease protocol's timing and test hooks (src/upload/lease.ts). */
  lease?: LeaseOptions;
  /** Also write `<hash>.ls` NAR listings. */
  writeListing?: boolean;
  /** Attempts per path for `retry-path` failures (the failure policy's default if unset). */
  pathAttempts?: number;
  /** First retry delay of a path (the failure policy's default if unset). */
  retryBaseMs?: number;
  /** Stop starting new paths; those in flight finish and are published. */
  drain?: AbortSignal;
  /** Abort in-flight uploads now; nothing half-written is ever published. */
  signal?: AbortSignal;
}

/** Who watches: events as they happen, running totals for a progress display. */
export interface ObservationOptions {
  onEvent?: (e: PushEvent) => void;
  progress?: PushProgress;
}

/** Everything push() takes: the three parts, and whether to stop after planning. */
export interface PushOptions extends PlanningOptions, ExecutionOptions, ObservationOptions {
  /** Plan and report only; write nothing. */
  dryRun?: boolean;
}

export interface PushResult {
  dryRun: boolean;
  summary: PlanSummary;
  /** Cached narinfos refreshed so pruning keeps them (refresh-on-use). */
  refreshed: number;
  uploaded: { path: string; narSize: number; fileSize: number }[];
  failed: { path: string; reason: string; error: unknown }[];
  /** Planned but never started, because a drain stopped intake. */
  notStarted: string[];
  ms: number;
  /** Every requested closure is in the cache, apart from paths left to upstream. */
  complete: boolean;
  /** The plan itself, on a dry run (for listing what would happen). */
  plan?: PushPlan;
}

/** NAR and compressed bytes of what a push published. */
export function uploadedBytes(r: Pick<PushResult, 'uploaded'>): { nar: number; file: number } {
  let nar = 0;
  let file = 0;
  for (const u of r.uploaded) {
    nar += u.narSize;
    file += u.fileSize;
  }
  return { nar, file };
}
