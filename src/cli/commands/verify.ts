/**
 * `--verify` (`--deep`, `--repair`): audit the whole cache, print a count per kind of
 * problem and one line per problem, and exit 0 when nothing is damaged, 1 otherwise. With
 * `--repair`, re-upload what the local store has of the damaged paths, then audit again:
 * the exit code and the report are those of the bucket as repair left it.
 */
import { parsePublicKey, type PublicKey } from '../../nix/signing.js';
import { DEFAULT_STORE_DIR } from '../../nix/store-path.js';
import type { Logger } from '../../util/log.js';
import { LoftError } from '../../util/errors.js';
import type { BlobStore } from '../../storage/port.js';
import { readSigningKey, type LoftConfig } from '../../config/index.js';
import { parseSecretKey } from '../../nix/signing.js';
import { verifyCache, type VerifyProgress, type VerifyReport } from '../../verify/verify.js';
import { countByKind, FINDING_KINDS, isDamage } from '../../verify/findings.js';
import { VerifyNoKeysError } from '../../verify/errors.js';
import {
  executeRepair,
  planRepair,
  type RepairContext,
  type RepairResult,
} from '../../verify/repair.js';
import type { PushOptions } from '../../upload/push.js';
import { signatureKeyName } from '../../upload/plan.js';
import { formatBytes, formatDuration } from '../../util/format.js';
import { EXIT, type ExitCode } from '../exit-codes.js';
import type { TerminalStream } from '../progress.js';

export interface VerifyAction {
  deep: boolean;
  repair: boolean;
}

export interface VerifyCommandContext {
  blobs: BlobStore;
  logger: Logger;
  config: Pick<LoftConfig, 'signingKeyPath' | 'signingKeyName' | 'trustedPublicKeys'>;
  /** The store's directory (from the daemon when open); `/nix/store` otherwise. */
  storeDir?: string;
  /** Who signed a path in the local store, among skip_signed_by_keys (needs the daemon). */
  upstreamSigner?: (storePath: string) => Promise<string | undefined>;
  /** For --repair: the push pipeline over the local store. */
  repair?: { ctx: RepairContext; options: PushOptions };
}

export interface VerifyIo {
  out: { write(s: string): unknown };
  terminal?: TerminalStream | undefined;
  signal?: AbortSignal;
}

/** The signing key's public half and every key in trusted_public_keys. */
export async function trustedKeysOf(config: VerifyCommandContext['config']): Promise<PublicKey[]> {
  const keys: PublicKey[] = config.trustedPublicKeys.map((k) =>
    parsePublicKey(k, 'trusted_public_keys'),
  );
  const text = await readSigningKey(config);
  if (text !== undefined) keys.push(parseSecretKey(text.reveal(), text.path).publicKey());
  if (keys.length === 0) throw new VerifyNoKeysError();
  return keys;
}

export async function runVerify(
  ctx: VerifyCommandContext,
  action: VerifyAction,
  io: VerifyIo,
): Promise<ExitCode> {
  const trustedKeys = await trustedKeysOf(ctx.config);
  const vctx = {
    blobs: ctx.blobs,
    logger: ctx.logger,
    trustedKeys,
    storeDir: ctx.storeDir ?? DEFAULT_STORE_DIR,
    upstreamSigner: ctx.upstreamSigner,
  };
  const run = async () => {
    const draw = progressOn(io.terminal);
    try {
      return await verifyCache(vctx, {
        deep: action.deep,
        signal: io.signal,
        onProgress: draw.update,
      });
    } finally {
      draw.stop();
    }
  };
  let report = await run();
  if (action.repair && report.findings.some(isDamage)) {
    if (ctx.repair === undefined) {
      throw new LoftError('CLI_NO_CONTEXT', 'internal', '--repair was run without the local store');
    }
    io.out.write(reportText(report, ctx.blobs.description, action.deep));
    const plan = planRepair(report.findings);
    const repaired = await executeRepair(ctx.repair.ctx, plan, {
      ...ctx.repair.options,
      // The first signal stops starting paths; those in flight finish and are published.
      drain: io.signal,
    });
    io.out.write(repairText(repaired));
    io.out.write('verifying again after the repair:\n');
    report = await run();
  }
  io.out.write(reportText(report, ctx.blobs.description, action.deep));
  return report.findings.some(isDamage) ? EXIT.failed : EXIT.ok;
}

export function reportText(r: VerifyReport, description: string, deep: boolean): string {
  const damage = r.findings.filter(isDamage);
  const notices = r.findings.filter((f) => !isDamage(f));
  const lines = [
    `verified ${description}: ${r.narInfos} narinfos, ${r.nars} NARs, ${r.objects} objects` +
      (deep ? `; read back ${r.narsRead} NARs (${formatBytes(r.narBytesRead)})` : '') +
      ` in ${formatDuration(r.ms)}`,
  ];
  lines.push(damage.length === 0 ? 'no problems found' : `${damage.length} problems:`);
  for (const c of countByKind(damage)) lines.push(`  ${c.count} ${FINDING_KINDS[c.kind].label}`);
  if (notices.length > 0) {
    lines.push(`${notices.length} notices (not damage; nothing is deleted):`);
    for (const c of countByKind(notices)) lines.push(`  ${c.count} ${FINDING_KINDS[c.kind].label}`);
  }
  for (const f of [...damage, ...notices]) lines.push(`${f.kind} ${f.key}: ${f.detail}`);
  return `${lines.join('\n')}\n`;
}

function repairText(r: RepairResult): string {
  const lines = [`repair: re-uploaded ${r.pushed.length} damaged or missing paths`];
  for (const p of r.pushed) lines.push(`  repaired ${p}`);
  if (r.notRepaired.length > 0) lines.push(`could not repair ${r.notRepaired.length}:`);
  for (const n of r.notRepaired) lines.push(`  ${n.what}: ${n.reason}`);
  return `${lines.join('\n')}\n`;
}

/** A progress line on a terminal, redrawn at most 5 times a second. */
function progressOn(terminal: TerminalStream | undefined): {
  update: (p: VerifyProgress) => void;
  stop: () => void;
} {
  if (terminal === undefined) return { update: () => {}, stop: () => {} };
  let last = 0;
  let shown = false;
  return {
    update(p) {
      const now = Date.now();
      if (now - last < 200 && p.done !== p.total) return;
      last = now;
      const what =
        p.phase === 'listing'
          ? `listing: ${p.done} objects`
          : p.phase === 'narinfos'
            ? `narinfos: ${p.done}/${p.total}`
            : `NARs: ${p.done}/${p.total}, ${formatBytes(p.bytes)} read`;
      terminal.write(`\r\x1b[2Kverifying ${what}`);
      shown = true;
    },
    stop() {
      if (shown) terminal.write('\r\x1b[2K');
    },
  };
}

/** The upstreamSigner of a local store: the first of `skip`'s keys among the path's signatures. */
export function upstreamSignerOf(
  store: { queryPathInfo(path: string): Promise<{ sigs: string[] } | undefined> },
  skip: readonly string[],
): (storePath: string) => Promise<string | undefined> {
  const keys = new Set(skip);
  return async (path) => {
    const info = await store.queryPathInfo(path);
    return info?.sigs.map(signatureKeyName).find((k) => keys.has(k));
  };
}
