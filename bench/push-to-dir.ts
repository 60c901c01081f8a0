/**
 * Push a closure into a local directory (a Nix file:// cache) with Loft's pipeline, as its
 * own process, for bench/push.ts to time against `nix copy --to file://DIR`.
 *
 *   node dist/bench/push-to-dir.js DIR SECRET_KEY_FILE STORE_PATH...
 *
 * For experiments: THREADS=N sets upload_threads (default 12), FSYNC=0 skips fsync.
 */
import { readFileSync } from 'node:fs';
import { getCompression, shutdownCompression } from '../src/compress/index.js';
import { parseSecretKey } from '../src/nix/signing.js';
import { LocalStore } from '../src/store/local-store.js';
import { createLocalDirStore } from '../src/storage/local-dir-store.js';
import { NarPacker } from '../src/pack/index.js';
import { push } from '../src/upload/push.js';
import { nullLogger } from '../src/util/log.js';

const [dir, keyFile, ...roots] = process.argv.slice(2);
if (!dir || !keyFile || roots.length === 0) {
  console.error('usage: push-to-dir DIR SECRET_KEY_FILE STORE_PATH...');
  process.exit(2);
}
const store = await LocalStore.open({ maxConnections: 13 });
const blobs = createLocalDirStore({ dir, fsync: process.env.FSYNC !== '0' });
const packer = new NarPacker();
try {
  const r = await push(
    {
      store,
      blobs,
      index: undefined,
      compression: getCompression('zstd'),
      compressionLevel: undefined,
      signingKey: parseSecretKey(readFileSync(keyFile, 'utf8'), keyFile),
      logger: nullLogger,
      packer,
    },
    roots,
    { uploadThreads: Number(process.env.THREADS ?? 12), skipSignedByKeys: [] },
  );
  if (!r.complete) throw new Error(`push incomplete: ${JSON.stringify(r.failed)}`);
} finally {
  await Promise.all([store.close(), blobs.close(), packer.shutdown()]);
  await shutdownCompression();
}
