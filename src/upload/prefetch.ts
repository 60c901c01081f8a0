/**
 * The first NARs of a push, packed while the lease's round trips run. The packer threads
 * are idle then, so the first upload can start the moment the lease holds instead of one
 * packing later. Nothing is sent early: a NAR still goes to the bucket only after the lease
 * is written and the prune intents are read (lease.ts), so the protocol is unchanged.
 *
 * Only NARs packed from disk start early (a daemon stream would hold a daemon connection
 * through the lease). They are read only once the push's temp roots over every path it
 * uploads are held (the caller's, which it releases). Their bytes wait in the packer's
 * stream, bounded by the packer's credit, until the upload reads them.
 */
import { describeError } from '../util/errors.js';
import type { PathInfo } from '../store/path-info.js';
import type { TempRootsLease } from '../store/temp-roots.js';
import { packedNarSource, type NarSource, type NarSourceOptions } from './nar-source.js';
import type { PushContext } from './push-context.js';

export class PrefetchedNars {
  private readonly sources = new Map<string, NarSource>();
  private readonly started: Promise<void>;
  private closed = false;

  private constructor(
    ctx: PushContext,
    infos: readonly PathInfo[],
    o: NarSourceOptions,
    roots: Promise<TempRootsLease>,
  ) {
    this.started = roots.then(
      () => {
        if (this.closed) return;
        for (const info of infos) {
          const source = packedNarSource(ctx, info, o);
          if (source === undefined) break;
          // Read by the upload later, or cancelled unread: an error meanwhile is the
          // upload's to see (take() hands out no failed source), never an unhandled one.
          source.body.on('error', () => {});
          this.sources.set(info.path, source);
        }
      },
      (e: unknown) => {
        // The push awaits the same roots before its upload and reports the failure there.
        ctx.logger.debug(`push: not packing ahead of the lease: ${describeError(e)}`);
      },
    );
  }

  /**
   * Start packing `infos` (the first NARs the upload will start), when there is a packer,
   * once `roots` (the caller's temp roots over them) are held.
   */
  static start(
    ctx: PushContext,
    infos: readonly PathInfo[],
    o: NarSourceOptions,
    roots: Promise<TempRootsLease> | undefined,
  ): PrefetchedNars | undefined {
    if (infos.length === 0 || ctx.packer === undefined || roots === undefined) return undefined;
    return new PrefetchedNars(ctx, infos, o, roots);
  }

  /** Resolves once the packing has started (or was given up): take() then sees it all. */
  ready(): Promise<void> {
    return this.started;
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

  /** Cancel what was not taken. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.closed = true;
    await this.started;
    for (const source of this.sources.values()) source.body.destroy();
    this.sources.clear();
  }
}
