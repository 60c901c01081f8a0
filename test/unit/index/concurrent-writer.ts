/**
 * Run as a separate process by local-index.test.ts: records `count` paths one call (one
 * transaction) at a time and reads them back as it goes, so two of these at once contend
 * for the write lock the way the service and the post-build hook do.
 *
 *   node concurrent-writer.js DB CACHE_ID TAG COUNT
 */
import { LocalIndex } from '../../../src/index/index.js';
import { hashPart, storePath } from './support.js';

const [db, cacheId, tag, count] = process.argv.slice(2);
const index = LocalIndex.open(db as string, cacheId as string, { busyTimeoutMs: 20_000 });
const n = Number(count);
for (let i = 0; i < n; i++) {
  const h = hashPart(i, Number(tag));
  index.recordPresent({ hashPart: h, storePath: storePath(h), narinfoTime: 1000 + i });
  if (i % 50 === 0) {
    index.setState(`progress-${tag}`, String(i));
    if (index.getPresent(h)?.narinfoTime !== 1000 + i) throw new Error(`lost write ${i}`);
  }
}
index.setState(`progress-${tag}`, String(n));
index.close();
process.stdout.write('ok');
