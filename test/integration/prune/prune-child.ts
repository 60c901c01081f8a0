/**
 * A prune in its own process, for the kill -9 test: prunes the bucket named in argv with
 * the injected clock from argv, small batches, and log lines on stdout (one JSON per line).
 *   node prune-child.js <bucket> <now ms> <narinfo batch size>
 */
import { createS3Store } from '../../../src/storage/index.js';
import { prune } from '../../../src/prune/prune.js';
import { policyFromSettings } from '../../../src/prune/policy.js';
import type { Logger, LogFields } from '../../../src/util/log.js';
import { storeOptions } from '../../support/s3.js';

const [bucket, nowMs, batch] = process.argv.slice(2);
const line = (level: string) => (msg: string, fields?: LogFields) =>
  process.stdout.write(`${JSON.stringify({ level, msg, ...fields })}\n`);
const logger: Logger = {
  debug: line('debug'),
  info: line('info'),
  warn: line('warn'),
  error: line('error'),
};
const blobs = createS3Store(storeOptions(bucket!));
try {
  await prune(
    {
      blobs,
      logger,
      policy: policyFromSettings({
        retentionDays: 1,
        maxSizeBytes: undefined,
        targetPercentage: 80,
      }),
    },
    { now: new Date(Number(nowMs)), narInfoBatchSize: Number(batch) },
  );
} finally {
  await blobs.close();
}
