/**
 * Realisations of content-addressed derivations (`ca-derivations`, experimental in Nix):
 * after a push, each pushed path that is a floating CA derivation's output, or a `.drv`
 * with such outputs, gets its realisation uploaded to `realisations/<id>.doi`, signed with
 * the cache's key, so that a Nix client with `ca-derivations` substitutes the output from
 * the derivation alone.
 *
 * Which derivations: the `.drv` paths pushed, and the deriver (path info) of every other
 * path pushed, read from the store directory on disk; only their outputs without a fixed
 * path are asked about (a client knows an input-addressed output's path from the .drv).
 * Note that Nix 2.8 registers a CA output with the *resolved* derivation (inputs replaced by
 * their outputs) as its deriver: that one's realisation is what path info leads to, and it
 * is enough for a client that can resolve the derivation itself (its inputs' realisations
 * are in the cache too); the realisation of the derivation as written is found when its
 * `.drv` is pushed (`--watch-exec`, the service, or `--upload-path` of the .drv).
 *
 * A realisation is uploaded only after its output's narinfo, and those of the realisations
 * it depends on, are in the cache (checked there), and after the realisations it depends on:
 * a client never finds a realisation it cannot substitute. The daemon is asked through
 * QueryRealisation (protocol 1.27, Nix 2.4, and later); an older daemon is reported once.
 * Nothing here fails a push: what goes wrong is logged.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError, isLoftError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { mapLimit } from '../util/limit.js';
import { floatingOutputs, parseDerivation, type Derivation } from '../nix/derivation.js';
import { DerivationHasher } from '../nix/hash-modulo.js';
import {
  drvOutputId,
  formatRealisation,
  realisationKey,
  signRealisation,
  type Realisation,
} from '../nix/realisation.js';
import type { SecretKey } from '../nix/signing.js';
import type { LocalStore } from '../store/local-store.js';
import type { BlobStore } from '../storage/port.js';
import { remoteNarInfos } from './remote-lookup.js';

const CONTENT_TYPE = 'application/json';
const CONCURRENCY = 8;

export interface RealisationDeps {
  store: Pick<
    LocalStore,
    'storeDir' | 'queryPathInfo' | 'queryRealisation' | 'supportsRealisations' | 'daemonInfo'
  >;
  blobs: BlobStore;
  signingKey: SecretKey | undefined;
  /** Where the store's files are (a chroot store's `<root>/nix/store`). */
  storeDirOnDisk: string;
  logger: Logger;
}

export interface RealisationResult {
  /** Realisations written to the cache. */
  uploaded: number;
  /** Found but not written: an output (or a dependency's) is not in the cache. */
  skipped: number;
}

/** One per app: remembers what it uploaded, and says once that the daemon cannot help. */
export class RealisationUploader {
  private told = false;
  /** The daemon dropped the connection when asked: not asked again in this run. */
  private unanswered = false;
  private readonly done = new Set<string>();

  constructor(private readonly deps: RealisationDeps) {}

  /** Upload the realisations of these pushed paths (all in the cache, their closures too). */
  async upload(pushed: readonly string[]): Promise<RealisationResult> {
    const result: RealisationResult = { uploaded: 0, skipped: 0 };
    const { store, logger } = this.deps;
    if (pushed.length === 0 || this.unanswered) return result;
    if (!store.supportsRealisations) {
      if (!this.told) {
        this.told = true;
        const v = store.daemonInfo.daemonProtocol;
        logger.info(
          `the nix-daemon speaks protocol 1.${v & 0xff}, which cannot list realisations (1.27, Nix 2.4, can): ` +
            'outputs of content-addressed derivations are uploaded without them',
          { event: 'realisations-unsupported' },
        );
      }
      return result;
    }
    const drvPaths = await this.derivations(pushed);
    const hasher = new DerivationHasher((p) => this.readDrv(p));
    const found = new Map<string, Realisation>();
    await mapLimit(drvPaths, CONCURRENCY, async (drvPath) => {
      try {
        const drv = await this.readDrv(drvPath);
        const floating = floatingOutputs(drv);
        if (floating.length === 0) return;
        const hashes = await hasher.outputHashes(drv);
        for (const name of floating) {
          await this.collect(drvOutputId(hashes.get(name)!, name), found);
        }
      } catch (e) {
        if (isLoftError(e, 'DAEMON_CONNECTION_LOST')) this.giveUp(e);
        else logger.debug(`no realisations for ${drvPath}: ${describeError(e)}`);
      }
    });
    if (found.size === 0) return result;
    await this.write(found, result);
    if (result.uploaded > 0 || result.skipped > 0) {
      logger.info(
        `uploaded ${result.uploaded} realisations` +
          (result.skipped > 0 ? ` (${result.skipped} skipped: outputs not in the cache)` : ''),
        { event: 'realisations', ...result },
      );
    }
    return result;
  }

  /**
   * A Nix 2.8 daemon without `ca-derivations` aborts the worker serving us when asked for
   * a realisation: said once, and not asked again while this process runs.
   */
  private giveUp(e: unknown): void {
    if (this.unanswered) return;
    this.unanswered = true;
    this.deps.logger.warn(
      `the nix-daemon dropped the connection when asked for a realisation (${describeError(e)}); ` +
        'Nix 2.8 does that when ca-derivations is not in its experimental-features. ' +
        'Realisations are not uploaded until Loft restarts',
      { event: 'realisations-unanswered' },
    );
  }

  /**
   * The .drv paths pushed, and the derivers of the other content-addressed paths pushed
   * (a floating CA output has a `fixed:r:...` CA; an input-addressed output has none and
   * needs no realisation, so its .drv is never read).
   */
  private async derivations(pushed: readonly string[]): Promise<string[]> {
    const drvs = new Set(pushed.filter((p) => p.endsWith('.drv')));
    const others = pushed.filter((p) => !p.endsWith('.drv'));
    const infos = await mapLimit(others, CONCURRENCY, (p) => this.deps.store.queryPathInfo(p));
    for (const i of infos) if (i?.deriver && i.ca?.startsWith('fixed:')) drvs.add(i.deriver);
    return [...drvs];
  }

  private async readDrv(drvPath: string): Promise<Derivation> {
    const base = drvPath.slice(drvPath.lastIndexOf('/') + 1);
    const text = await readFile(join(this.deps.storeDirOnDisk, base), 'utf8');
    return parseDerivation(text, drvPath);
  }

  /** The realisation and those it depends on, from the daemon; none if any is missing. */
  private async collect(id: string, into: Map<string, Realisation>): Promise<void> {
    const local = new Map<string, Realisation>();
    const todo = [id];
    while (todo.length > 0) {
      const next = todo.pop()!;
      // Uploaded by an earlier push of this run: not asked again (nor its dependencies).
      if (local.has(next) || into.has(next) || this.done.has(next)) continue;
      if (this.unanswered) return;
      const r = await this.deps.store.queryRealisation(next);
      if (!r) {
        if (next !== id) {
          this.deps.logger.warn(
            `realisation ${id} depends on ${next}, which the nix-daemon does not have; not uploaded`,
          );
        }
        return;
      }
      local.set(next, r);
      todo.push(...Object.keys(r.dependentRealisations));
    }
    for (const [k, r] of local) into.set(k, r);
  }

  /** Dependencies first; each only when its output and its dependencies' are cached. */
  private async write(found: Map<string, Realisation>, result: RealisationResult): Promise<void> {
    const { blobs, signingKey, logger } = this.deps;
    const hashPart = (base: string) => base.slice(0, 32);
    const cached = await remoteNarInfos(blobs, [
      ...new Set([...found.values()].map((r) => hashPart(r.outPath))),
    ]);
    const written = new Set<string>();
    const failed = new Set<string>();
    const visit = async (id: string): Promise<boolean> => {
      if (written.has(id) || this.done.has(id)) return true;
      if (failed.has(id)) return false;
      const r = found.get(id)!;
      let ok = cached.has(hashPart(r.outPath));
      for (const dep of Object.keys(r.dependentRealisations)) {
        if (!(await visit(dep))) ok = false;
      }
      if (!ok) {
        failed.add(id);
        result.skipped++;
        logger.debug(`realisation ${id} not uploaded: ${r.outPath} or a dependency is not cached`);
        return false;
      }
      const signed = signingKey ? signRealisation(r, signingKey) : r;
      await blobs.put(realisationKey(id), formatRealisation(signed), { contentType: CONTENT_TYPE });
      written.add(id);
      this.done.add(id);
      result.uploaded++;
      logger.debug(`uploaded realisation ${id} -> ${r.outPath}`, { event: 'realisation', id });
      return true;
    };
    for (const id of found.keys()) {
      try {
        await visit(id);
      } catch (e) {
        failed.add(id);
        logger.warn(`could not upload realisation ${id}: ${describeError(e)}`);
      }
    }
  }
}
