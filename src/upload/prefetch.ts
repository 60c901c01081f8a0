/**
 * The first NARs of a push, packed while the lease's round trips run. The packer threads
 * are idle then, so the first upload can start the moment the lease holds instead of one
 * packing later. Nothing is sent early: a NAR still goes to the bucket only after the lease
 * is written and the prune intents are read (lease.ts), so the protocol is unchanged.
 *
 * Only NARs packed from disk start early (a daemon stream would hold a daemon connection
 * through the lease). A temp root holds each from before its first read (the push's own,
 * taken for every path it uploads, or one of ours). Their bytes wait
 * in the packer's stream, bounded by the packer's credit, until the upload reads them.
 */
import { describeError } from '../util/errors.js';
import type { PathInfo } from '../store/path-info.js';
import type { TempRootsLease } from '../store/temp-roots.js';
import { packedNarSource, type NarSource, type NarSourceOptions } from './nar-source.js';
import type { PushContext } from './push-context.js';

export class PrefetchedNars {
  private readonly sources = new Map<string, NarSource>();
  private readonly roots: Promise<TempRootsLease | undefined>;
  private closed = false;

  /** Roots the caller holds over these paths (and releases), else our own. */
  private readonly ownRoots: boolean;

  private constructor(
    ctx: PushContext,
    infos: readonly PathInfo[],
    o: NarSourceOptions,
    held?: Promise<TempRootsLease>,
  ) {
    this.ownRoots = held === undefined;
    this.roots = (held ?? ctx.store.holdTempRoots(infos.map((i) => i.path))).then(
      (roots) => {
        if (this.closed) return roots;
        for (const info of infos) {
          const source = packedNarSource(ctx, info, o);
          if (source === undefined) break;
          // Read by the upload later, or cancelled unread: an error meanwhile is the
          // upload's to see (take() hands out no failed source), never an unhandled one.
          source.body.on('error', () => {});
          this.sources.set(info.path, source);
        }
        return roots;
      },
      (e: unknown) => {
        // The push holds its own temp roots later and reports a failure there.
        ctx.logger.debug(`push: not packing ahead of the lease: ${describeError(e)}`);
        return undefined;
      },
    );
  }

  /**
   * Start packing `infos` (the first NARs the upload will start), when there is a packer;
   * under `held` if given (temp roots over them that the caller releases).
   */
  static start(
    ctx: PushContext,
    infos: readonly PathInfo[],
    o: NarSourceOptions,
    held?: Promise<TempRootsLease>,
  ): PrefetchedNars | undefined {
    if (infos.length === 0 || ctx.packer === undefined) return undefined;
    return new PrefetchedNars(ctx, infos, o, held);
  }

  /** Resolves once the packing has started (or was given up): take() then sees it all. */
  async ready(): Promise<void> {
    await this.roots;
  }

  /**
   * The source packed ahead for `path`, once; undefined when there is none or it failed
   * already (the caller packs it again, and so meets the failure its own way).
   */
  take(path: string): NarSource | undefined {
    const source = this.sources.get(path);
    if (source === undefined) return undefined;
    this.sources.delete(path);
    if (source.body.errored !== null || source.body.destroyed) return undefined;
    return source;
  }

  /** Cancel what was not taken and let the temp roots go. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.closed = true;
    const roots = await this.roots;
    for (const source of this.sources.values()) source.body.destroy();
    this.sources.clear();
    if (this.ownRoots) await roots?.release();
  }
}
