/**
 * `--status`: the service's queue and state, from the local index alone (works while the
 * service runs and while S3 is down). Text for people, or one JSON object with
 * `--log-format json`.
 */
import { existsSync } from 'node:fs';
import type { LoftConfig, LogFormat } from '../../config/index.js';
import type { Logger } from '../../util/log.js';
import { UploadQueue } from '../../index/queue.js';
import { openIndexOnly } from '../../service/context.js';
import { collectStatus, type StatusPath, type StatusReport } from '../../service/status.js';
import { countInbox, inboxDirFor } from '../../watch/inbox.js';
import { EXIT, type ExitCode } from '../exit-codes.js';

export async function runStatus(
  config: LoftConfig,
  format: LogFormat,
  io: { out: { write(s: string): unknown }; logger: Logger; now?: Date },
): Promise<ExitCode> {
  if (!existsSync(config.localCachePath)) {
    const note = `no local index at ${config.localCachePath} yet: the service has not run with this configuration`;
    io.out.write(
      format === 'json'
        ? `${JSON.stringify({ config: config.source, index: { path: config.localCachePath, exists: false }, signing: signingOf(config), note })}\n`
        : `${note}\n`,
    );
    return EXIT.ok;
  }
  const ic = await openIndexOnly(config, io.logger);
  try {
    const dir = inboxDirFor(config.localCachePath);
    const report = collectStatus({
      config,
      cacheDescription: ic.cacheDescription,
      index: ic.index,
      queue: new UploadQueue(ic.index),
      inbox: { dir, files: await countInbox(dir) },
      now: io.now,
    });
    const signing = signingOf(config);
    io.out.write(
      format === 'json'
        ? `${JSON.stringify({ ...report, signing }, null, 2)}\n`
        : renderStatus(report, signing),
    );
  } finally {
    ic.close();
  }
  return EXIT.ok;
}

function indent(text: string, by: string): string {
  return text
    .split('\n')
    .map((l) => by + l)
    .join('\n');
}

function pathLine(p: StatusPath): string {
  if (p.inProgress) return `  in progress  ${p.path}`;
  if (p.attempts > 0) {
    return (
      `  retrying     ${p.path} (failed ${p.attempts}x, next try ${p.nextAttemptAt})` +
      (p.lastError ? `\n${indent(p.lastError, '                 ')}` : '')
    );
  }
  return `  waiting      ${p.path} (from ${p.source}, since ${p.enqueuedAt})`;
}

/** Whether uploads are signed (from the configuration; the key itself is checked at start). */
export function signingOf(config: Pick<LoftConfig, 'signingKeyPath' | 'signingKeyName'>): {
  signed: boolean;
  keyPath?: string;
} {
  return config.signingKeyPath === undefined
    ? { signed: false }
    : { signed: true, keyPath: config.signingKeyPath };
}

export function renderStatus(r: StatusReport, signing?: ReturnType<typeof signingOf>): string {
  const q = r.queue;
  const lines: string[] = [];
  lines.push(`config:        ${r.config}`);
  lines.push(`cache:         ${r.cache}`);
  if (signing) {
    lines.push(
      signing.signed
        ? `signing:       uploads are signed with the key in ${signing.keyPath}`
        : 'signing:       uploads are NOT signed (no signing_key_path); Nix refuses them unless require-sigs = false',
    );
  }
  lines.push(
    `local index:   ${r.index.path}: ${r.index.presentPaths} paths known to be in the cache, ${r.index.seenPaths} store paths seen by the service`,
  );
  const s = r.initialScan;
  lines.push(
    `initial scan:  ${
      s.state === 'done'
        ? `done (completed ${s.doneAt})`
        : s.state === 'in-progress'
          ? `in progress (paths queued ${s.queuedAt})`
          : s.state === 'not-run'
            ? 'not run yet (runs at the next service start)'
            : 'off (scan_on_startup = false)'
    }`,
  );
  const p = r.prune;
  lines.push(
    `pruning:       ${p.enabled ? p.schedule : 'off (prune_enabled = false)'}` +
      (p.lastRun ? `; last ${p.lastRun}${p.lastSummary ? ` (${p.lastSummary})` : ''}` : '') +
      (p.nextRun ? `; next ${p.nextRun}` : ''),
  );
  lines.push(`inbox:         ${r.inbox.files} post-build hook files waiting in ${r.inbox.dir}`);
  lines.push(
    `queue:         ${q.pending} pending (${q.inProgress} in progress, ${q.retrying} retrying), ${q.parked} parked`,
  );
  for (const e of q.pendingPaths) lines.push(pathLine(e));
  if (q.pending > q.pendingPaths.length) {
    lines.push(`  ... and ${q.pending - q.pendingPaths.length} more pending`);
  }
  if (q.parked > 0) {
    lines.push(
      'parked (failed every attempt; retried when discovered again, or upload one now with loft --upload-path PATH):',
    );
    for (const e of q.parkedPaths) {
      lines.push(`  ${e.path} (failed ${e.attempts}x, parked ${e.parkedAt})`);
      if (e.lastError) lines.push(indent(e.lastError, '      '));
    }
    if (q.parked > q.parkedPaths.length) {
      lines.push(`  ... and ${q.parked - q.parkedPaths.length} more parked`);
    }
  }
  return `${lines.join('\n')}\n`;
}
