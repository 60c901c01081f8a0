/**
 * Where a NAR comes from: packed from disk in a worker thread (zstd and none, when there is
 * a packer), or streamed from the nix-daemon through the compressor's stream; and when to
 * fall back from the first to the second. Either way the bytes are checked against the
 * registered narHash and narSize on the way, and the compressed output is measured.
 */
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream';
import { Hash } from '../nix/hash.js';
import { NarListingBuilder } from '../nix/nar-listing.js';
import { NarParser } from '../nix/nar-parse.js';
import { parseStorePath } from '../nix/store-path.js';
import { CompressionInputMismatchError, type CompressionDigests } from '../compress/index.js';
import { PackSourceError, type PackStream } from '../pack/index.js';
import type { PathInfo } from '../store/path-info.js';
import type { PushContext } from './push-context.js';

/** One NAR on its way to storage: the compressed bytes, and what was measured of them. */
export interface NarSource {
  /** `packed` (worker thread, from disk) or `daemon` (nix-daemon, compressor stream). */
  readonly from: 'packed' | 'daemon';
  body: Readable;
  digests(): CompressionDigests | undefined;
  listing(): Buffer | undefined;
  /** NAR bytes read so far (for progress). */
  narBytes(): number;
}

export interface NarSourceOptions {
  writeListing: boolean;
  /** NAR bytes read, as they are read (for progress). */
  onNarBytes(n: number): void;
}

/** What a push's NAR sources report into: listings if asked, NAR bytes read as progress. */
export function narSourceOptions(
  writeListing: boolean | undefined,
  progress: { narBytesRead: number },
): NarSourceOptions {
  return {
    writeListing: writeListing ?? false,
    onNarBytes: (n) => {
      progress.narBytesRead += n;
    },
  };
}

/** The first source to try: packed from disk when possible, else the daemon. */
export function firstNarSource(ctx: PushContext, info: PathInfo, o: NarSourceOptions): NarSource {
  return packedNarSource(ctx, info, o) ?? daemonSource(ctx, info, o);
}

/**
 * The source to try after `failed` failed with `e`, or undefined when the error stands.
 * A packed NAR that was not readable from disk here (permissions, another root), or whose
 * files on disk are not the daemon's (a chroot store without real_store_dir), is read
 * through the daemon: the daemon is the authority on the path's bytes, so it decides
 * whether the path is corrupt.
 */
export function fallbackNarSource(
  ctx: PushContext,
  info: PathInfo,
  o: NarSourceOptions,
  failed: NarSource,
  e: unknown,
): NarSource | undefined {
  if (failed.from !== 'packed') return undefined;
  if (!(e instanceof PackSourceError) && !(e instanceof CompressionInputMismatchError)) {
    return undefined;
  }
  ctx.logger.debug(`reading ${info.path} through the nix-daemon: ${e.message}`);
  return daemonSource(ctx, info, o);
}

/**
 * The NAR packed from disk in a worker thread: encoded, checked against the registered
 * narHash/narSize and compressed there. Undefined when there is no packer or the method
 * needs the stream path (xz runs a program).
 */
export function packedNarSource(
  ctx: PushContext,
  info: PathInfo,
  o: NarSourceOptions,
): NarSource | undefined {
  const { packer, compression, compressionLevel, realStoreDir, store } = ctx;
  if (packer === undefined || (compression.name !== 'zstd' && compression.name !== 'none')) {
    return undefined;
  }
  const onDisk =
    realStoreDir === undefined
      ? info.path
      : `${realStoreDir}/${parseStorePath(info.path, store.storeDir).basename}`;
  const body: PackStream = packer.pack({
    path: onDisk,
    compression:
      compression.name === 'zstd'
        ? { name: 'zstd', level: compression.resolveLevel(compressionLevel)! }
        : { name: 'none' },
    narHash: info.narHash,
    narSize: info.narSize,
    listing: o.writeListing,
  });
  // The NAR stays in the worker; its size is known once it is done.
  let counted = 0;
  body.once('end', () => {
    counted = info.narSize;
    o.onNarBytes(counted);
  });
  return {
    from: 'packed',
    body,
    digests: () => body.digests(),
    listing: () => body.listing(),
    narBytes: () => counted,
  };
}

/**
 * The NAR from the nix-daemon, compressed by the compressor's stream. The compressor
 * hashes what it reads (against the registered narHash) and what it writes (the
 * FileHash); zstd does both in its worker thread. It errors instead of ending on a
 * mismatch, so the upload never completes with other bytes. The store checks sizes.
 */
function daemonSource(ctx: PushContext, info: PathInfo, o: NarSourceOptions): NarSource {
  const { compression, compressionLevel, store } = ctx;
  const nar: Readable = store.narStream(info.path, {
    expect: { narHash: info.narHash, narSize: info.narSize },
    hashedByCaller: true,
  });
  const compressor = compression.createCompressor({
    level: compressionLevel,
    digests: true,
    expectInput: { sha256: Hash.parse(info.narHash).digest, size: info.narSize },
  });
  let read = 0;
  nar.on('data', (c: Buffer) => {
    read += c.length;
    o.onNarBytes(c.length);
  });
  let listing: NarListingBuilder | undefined;
  let parser: NarParser | undefined;
  if (o.writeListing) {
    listing = new NarListingBuilder();
    parser = new NarParser({ visitor: listing });
    const p = parser;
    nar.on('data', (c: Buffer) => {
      try {
        p.push(c);
      } catch (e) {
        nar.destroy(e as Error);
      }
    });
  }
  // pipeline() destroys every stage with the first error, so a NAR that fails a check
  // errors the compressor, and the upload is aborted.
  const body = pipeline(nar, compressor, () => {});
  return {
    from: 'daemon',
    body,
    digests: () => compressor.digests(),
    listing: () => {
      parser?.end();
      return listing?.toBuffer();
    },
    narBytes: () => read,
  };
}
