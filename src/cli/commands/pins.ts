/**
 * `--pin PATH [--pin-name NAME]`, `--unpin NAME`, `--pins`: pins live in the bucket
 * (src/storage/pins.ts), so every machine's prune honours them. Pinning needs the bucket
 * only: the path must already be in the cache, which is checked before and after the pin
 * is written (a prune running meanwhile may have deleted it before it read the pin).
 */
import { LoftError } from '../../util/errors.js';
import { parseCacheInfo } from '../../nix/cache-info.js';
import { CACHE_INFO_KEY, narInfoKey } from '../../storage/keys.js';
import { formatPin, pinKey, readPins } from '../../storage/pins.js';
import type { BlobStore } from '../../storage/port.js';
import { resolveStorePath } from '../../store/resolve-path.js';
import { storePathHashPart } from '../../nix/store-path.js';
import type { Logger } from '../../util/log.js';
import { EXIT, type ExitCode } from '../exit-codes.js';

export interface PinContext {
  blobs: BlobStore;
  logger: Logger;
}

export interface PinIo {
  out: { write(s: string): unknown };
  cwd?: string;
  now?: Date;
}

/** The path is not in this cache: a pin would protect nothing. */
export class PinNotCachedError extends LoftError {
  constructor(path: string, cache: string) {
    super('PIN_NOT_CACHED', 'work', `${path} is not in ${cache}: there is nothing to pin`, {
      hint: `push it first (loft --upload-path ${path}), then pin it`,
    });
  }
}

export class PinNotFoundError extends LoftError {
  constructor(name: string, names: string[]) {
    super('PIN_NOT_FOUND', 'work', `there is no pin named ${JSON.stringify(name)}`, {
      hint:
        names.length === 0
          ? 'the cache has no pins'
          : `the pins are: ${names.map((n) => JSON.stringify(n)).join(', ')} (loft --pins lists them)`,
    });
  }
}

async function storeDirOf(blobs: BlobStore): Promise<string> {
  const body = await blobs.get(CACHE_INFO_KEY);
  return (body && parseCacheInfo(body.toString('utf8')).storeDir) || '/nix/store';
}

export async function runPin(
  ctx: PinContext,
  action: { path: string; name: string | undefined },
  io: PinIo,
): Promise<ExitCode> {
  const storeDir = await storeDirOf(ctx.blobs);
  const storePath = await resolveStorePath(action.path, storeDir, io.cwd ?? process.cwd());
  const hashPart = storePathHashPart(storePath, storeDir);
  const name = action.name ?? storePath.slice(storeDir.length + 34);
  const key = narInfoKey(hashPart);
  if ((await ctx.blobs.head(key)) === undefined) {
    throw new PinNotCachedError(storePath, ctx.blobs.description);
  }
  const k = pinKey(name);
  const replaced = await ctx.blobs.head(k);
  await ctx.blobs.put(k, formatPin({ name, storePath, created: io.now ?? new Date() }), {
    contentType: 'application/json',
  });
  if ((await ctx.blobs.head(key)) === undefined) {
    // A prune that read the pins before this write deleted it meanwhile.
    throw new LoftError(
      'PIN_PATH_PRUNED',
      'work',
      `pin ${JSON.stringify(name)} is recorded, but a prune deleted ${storePath} from ${ctx.blobs.description} meanwhile`,
      { hint: `push it again (loft --upload-path ${storePath}); the pin keeps it from now on` },
    );
  }
  io.out.write(
    `pinned ${storePath} as ${JSON.stringify(name)}${replaced ? ' (replacing the older pin of that name)' : ''}\n`,
  );
  return EXIT.ok;
}

export async function runUnpin(
  ctx: PinContext,
  action: { name: string },
  io: PinIo,
): Promise<ExitCode> {
  const k = pinKey(action.name);
  if ((await ctx.blobs.head(k)) === undefined) {
    const { pins } = await readPins(ctx.blobs);
    throw new PinNotFoundError(
      action.name,
      pins.map((p) => p.name),
    );
  }
  await ctx.blobs.deleteMany([k]);
  io.out.write(`removed pin ${JSON.stringify(action.name)}\n`);
  return EXIT.ok;
}

export async function runListPins(ctx: PinContext, io: PinIo): Promise<ExitCode> {
  const { pins, malformed } = await readPins(ctx.blobs);
  for (const m of malformed) ctx.logger.warn(`pin ${m.key} is malformed, skipped: ${m.problem}`);
  if (pins.length === 0) io.out.write(`no pins in ${ctx.blobs.description}\n`);
  for (const p of pins) io.out.write(`${p.name}\t${p.storePath}\t${p.created}\n`);
  return EXIT.ok;
}
