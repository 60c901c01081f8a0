/**
 * The second half of the alternative to Loft, as its own process so its CPU is counted
 * apart: every file of a directory (a `nix copy --to file://DIR` cache) PUT to a bucket
 * with the AWS SDK, 8 requests in flight, in no particular order.
 *
 *   node dist/bench/upload-dir.js DIR BUCKET ENDPOINT
 *
 * Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

const [dir, bucket, endpoint] = process.argv.slice(2);
if (!dir || !bucket || !endpoint) {
  console.error('usage: upload-dir DIR BUCKET ENDPOINT');
  process.exit(2);
}
const client = new S3Client({
  endpoint,
  region: 'us-east-1',
  forcePathStyle: true,
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});
const files = walk(dir);
let next = 0;
await Promise.all(
  Array.from({ length: 8 }, async () => {
    while (next < files.length) {
      const f = files[next++]!;
      await client.send(
        new PutObjectCommand({ Bucket: bucket, Key: relative(dir, f), Body: readFileSync(f) }),
      );
    }
  }),
);
client.destroy();
