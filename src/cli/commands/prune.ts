/**
 * `--prune` (with `--dry-run`: show the plan, delete nothing): one closure-aware prune of
 * the cache now, whatever `prune_enabled` says (that setting only drives the service's
 * schedule). Progress goes to the log; the plan or the summary goes to `out`.
 */
import type { Logger } from '../../util/log.js';
import type { BlobStore } from '../../storage/index.js';
import {
  prune,
  pruneSummaryLine,
  policyFromSettings,
  type PrunePlan,
  type PruneResult,
  type PruneSettings,
  type Protections,
  type Tally,
} from '../../prune/index.js';
import { EXIT, type ExitCode } from '../exit-codes.js';
import { formatBytes, formatDuration } from '../../util/format.js';

export interface PruneAction {
  dryRun: boolean;
}

/** What the command needs of the AppContext. */
export interface PruneContext {
  blobs: BlobStore;
  logger: Logger;
  config: { prune: PruneSettings };
}

export interface PruneIo {
  /** The plan (dry run) or the summary goes here (stdout). */
  out: { write(s: string): unknown };
  /** The local index: deleted paths are forgotten (`LocalIndex` fits). */
  index?: { forgetPresent(hashParts: Iterable<string>): number } | undefined;
  /**
   * First SIGINT/SIGTERM: stop after the current batch. Stopping between batches is always
   * safe, and the hard-abort signal only ever fires after this one, so it is all prune needs.
   */
  drain?: AbortSignal;
  /** The clock (tests). */
  now?: Date;
  /** Called after a prune that deleted (not a dry run): `--status` shows the last one. */
  record?: (at: Date, summary: string) => void;
}

export async function runPrune(
  ctx: PruneContext,
  action: PruneAction,
  io: PruneIo,
): Promise<ExitCode> {
  const policy = policyFromSettings(ctx.config.prune);
  const index = io.index;
  const result = await prune(
    {
      blobs: ctx.blobs,
      logger: ctx.logger,
      policy,
      forget: index ? (hps) => index.forgetPresent(hps) : undefined,
    },
    {
      dryRun: action.dryRun,
      now: io.now,
      signal: io.drain,
    },
  );
  if (result.plan === undefined) {
    io.out.write('prune stopped before it had a plan; nothing was deleted\n');
  } else if (action.dryRun) {
    io.out.write(
      `${planText(result.plan, ctx.blobs.description, result.protections)}dry run: nothing was deleted\n`,
    );
  } else {
    io.out.write(resultText(result, ctx.blobs.description));
    io.record?.(io.now ?? new Date(), pruneSummaryLine(result));
  }
  return result.interrupted ? EXIT.interrupted : EXIT.ok;
}

const t = (x: Tally, one: string, many = `${one}s`) =>
  `${x.count} ${x.count === 1 ? one : many} (${formatBytes(x.bytes)})`;

function days(ms: number): string {
  const d = ms / 86_400_000;
  return Number.isInteger(d) ? `${d} day${d === 1 ? '' : 's'}` : formatDuration(ms);
}

/** The plan for people: what is in the cache, what goes (by category), what stays. */
export function planText(plan: PrunePlan, description: string, protections?: Protections): string {
  const b = plan.before;
  const d = plan.deleting;
  const lines = [
    `prune plan for ${description} at ${plan.now.toISOString()} (retention ${days(plan.policy.retentionMs)}):`,
    `  in the cache: ${t(b.narInfos, 'narinfo')}, ${t(b.listings, 'listing')}, ${t(b.nars, 'NAR')}; ${formatBytes(b.bytes)} counted`,
  ];
  const row = (what: string) => lines.push(`  ${what}`);
  if (d.expired.count > 0) row(`delete ${t(d.expired, 'expired narinfo')}`);
  if (d.sizeEvicted.count > 0) row(`delete ${t(d.sizeEvicted, 'narinfo')} over the size budget`);
  if (d.listings.count > 0) row(`delete ${t(d.listings, 'listing')} of those narinfos`);
  if (d.releasedNars.count > 0) row(`delete ${t(d.releasedNars, 'NAR')} no remaining narinfo uses`);
  if (d.orphanNars.count > 0) {
    row(`delete ${t(d.orphanNars, 'orphan NAR')} older than ${days(plan.policy.orphanGraceMs)}`);
  }
  if (d.orphanListings.count > 0) {
    row(
      `delete ${t(d.orphanListings, 'orphan listing')} older than ${days(plan.policy.orphanGraceMs)}`,
    );
  }
  if (d.staleUploads > 0) {
    row(
      `abort ${d.staleUploads} multipart upload${d.staleUploads === 1 ? '' : 's'} older than ${days(plan.policy.staleUploadMs)}`,
    );
  }
  const nothing =
    d.expired.count +
      d.sizeEvicted.count +
      d.releasedNars.count +
      d.orphanNars.count +
      d.orphanListings.count +
      d.staleUploads ===
    0;
  if (nothing) row('nothing to delete');
  const k = plan.kept;
  row(
    `keep ${k.narInfos} narinfo${k.narInfos === 1 ? '' : 's'} (${k.live} live, the rest in their closures` +
      `${k.pinned > 0 ? `, ${k.pinned} written during the prune` : ''})`,
  );
  lines.push(...sparedLines(plan, protections));
  if (k.unreadable.length > 0)
    row(`keep ${k.unreadable.length} narinfos that do not parse, with what they name`);
  if (k.youngOrphans.count > 0) {
    row(
      `keep ${t(k.youngOrphans, 'unreferenced object')} younger than ${days(plan.policy.orphanGraceMs)} (uploads may be in progress)`,
    );
  }
  if (plan.size) {
    const s = plan.size;
    row(
      `size budget ${formatBytes(s.maxBytes)}, target ${formatBytes(s.targetBytes)}: ` +
        `${formatBytes(s.bytesAfterAge)} after the age policy, ` +
        (!s.triggered
          ? 'within budget'
          : s.cutoff
            ? `over budget: closures last refreshed at or before ${s.cutoff.toISOString()} go`
            : 'over budget'),
    );
  }
  row(`left after the prune: ${formatBytes(plan.bytesAfter)}`);
  for (const w of plan.warnings) row(`warning: ${w}`);
  return `${lines.join('\n')}\n`;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** What is spared and why: pins, live leases, young narinfos. */
function sparedLines(plan: PrunePlan, p: Protections | undefined): string[] {
  const by = plan.kept.protectedBy;
  const out: string[] = [];
  if (p && p.pins.length > 0) {
    const names = p.pins.map((x) => `${x.name}: ${x.storePath}`).join('; ');
    out.push(
      `  spare ${plural(by.pinned, 'narinfo')} pinned, with their closures (${plural(p.pins.length, 'pin')}: ${names})`,
    );
  }
  if (p && p.leases.length > 0) {
    const who = p.leases
      .map((l) => `${l.key} by ${l.owner || 'unknown'}, written ${l.lastModified.toISOString()}`)
      .join('; ');
    out.push(
      `  spare ${plural(by.leased, 'narinfo')} leased by pushes in progress (${plural(p.leases.length, 'live lease')}: ${who})`,
    );
  }
  if (p && p.expiredLeases.length > 0) {
    out.push(`  ignore ${plural(p.expiredLeases.length, 'expired lease')} (pushes that stopped)`);
  }
  if (by.young > 0) {
    out.push(
      `  spare ${plural(by.young, 'narinfo')} younger than ${plan.policy.graceMs / 60_000} min (prune_grace_minutes), with their closures`,
    );
  }
  return out;
}

/** The summary of a prune that ran. */
export function resultText(r: PruneResult, description: string): string {
  const d = r.deleted;
  const nars: Tally = {
    count: d.releasedNars.count + d.orphanNars.count,
    bytes: d.releasedNars.bytes + d.orphanNars.bytes,
  };
  const listings: Tally = {
    count: d.listings.count + d.orphanListings.count,
    bytes: d.listings.bytes + d.orphanListings.bytes,
  };
  let text =
    `pruned ${description}: deleted ${t(d.narInfos, 'narinfo')}, ${t(listings, 'listing')}, ${t(nars, 'NAR')}` +
    `${d.staleUploads > 0 ? `, aborted ${d.staleUploads} stale uploads` : ''}: ` +
    `${formatBytes(d.narInfos.bytes + listings.bytes + nars.bytes)} in ${formatDuration(r.ms)}\n`;
  if (r.spared.length > 0) {
    text += `kept ${r.spared.length} narinfos refreshed while pruning, with their closures\n`;
  }
  const p = r.protections;
  if (p && p.pins.length + p.leases.length > 0) {
    text += `kept the closures of ${plural(p.pins.length, 'pin')} and ${plural(p.leases.length, 'live push lease')}\n`;
  }
  if (r.interrupted) text += 'stopped early; the next prune finishes the job\n';
  for (const w of r.plan?.warnings ?? []) text += `warning: ${w}\n`;
  return text;
}
