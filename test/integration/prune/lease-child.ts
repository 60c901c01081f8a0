/**
 * A push in its own process, for the SIGKILL test: pushes <root> into <bucket> with a lease
 * of <ttl ms>, prints "leased" once its lease is written and its cached paths re-checked,
 * then stops there (as if uploading something huge) until it is killed.
 *   node lease-child.js <bucket> <ttl ms> <root>
 */
import { openPushContext } from '../../support/push.js';
import { push } from '../../../src/upload/push.js';

const [bucket, ttlMs, root] = process.argv.slice(2);
const ctx = await openPushContext({ bucket: bucket!, key: undefined });
await push(ctx, [root!], {
  uploadThreads: 1,
  skipSignedByKeys: [],
  lease: {
    ttlMs: Number(ttlMs),
    hooks: {
      rechecked: () => {
        process.stdout.write('leased\n');
        return new Promise(() => {});
      },
    },
  },
});
