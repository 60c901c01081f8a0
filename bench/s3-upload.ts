/**
 * Streamed upload throughput against a single buffered PutObject of the same bytes, same
 * run, same Ceph RGW (our own, started here and stopped at the end).
 *
 *   node dist/bench/s3-upload.js [--size-mib 512] [--runs 3] [--concurrency 4] [--bluestore]
 *
 * "upload()" streams the bytes in 64 KiB chunks of unknown total length through our S3
 * store (multipart, parts of 8 MiB, `--concurrency` parts in flight). "PutObject" sends the
 * whole buffer in one request with the SDK. Runs alternate so drift hits both alike; the
 * median of each is compared. The machine may be shared: numbers are noisy.
 */
import { DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { execFile } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { Agent } from 'node:http';
import { Readable } from 'node:stream';
import { parseArgs, promisify } from 'node:util';
import { createS3Store } from '../src/storage/s3-store.js';
import { createBucket } from '../test/support/s3.js';
import { rgwScript, startRgw } from '../test/support/fixtures.js';
import { median } from './measure.js';

const MiB = 1024 * 1024;
const { values } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '512' },
    runs: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '4' },
    bluestore: { type: 'boolean', default: false },
  },
});
const size = Number(values['size-mib']) * MiB;
const runs = Number(values.runs);
const concurrency = Number(values.concurrency);

function chunks(buf: Buffer, chunk = 64 * 1024): Readable {
  return Readable.from(
    (function* () {
      for (let off = 0; off < buf.length; off += chunk) yield buf.subarray(off, off + chunk);
    })(),
  );
}

const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);

async function main() {
  console.log(`starting Ceph RGW (${values.bluestore ? 'bluestore' : 'memstore'}) ...`);
  const rgw = await startRgw(
    values.bluestore
      ? { OSD_STORE: 'bluestore' }
      : { MEMSTORE_BYTES: String(Math.max(4096, 3 * (size / MiB)) * MiB) },
  );
  const env = rgw.env;
  const credentials = {
    accessKeyId: env.LOFT_TEST_S3_ACCESS_KEY!,
    secretAccessKey: env.LOFT_TEST_S3_SECRET_KEY!,
  };
  const sdk = new S3Client({
    endpoint: env.LOFT_TEST_S3_ENDPOINT,
    region: env.LOFT_TEST_S3_REGION,
    forcePathStyle: true,
    credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    expectContinueHeader: false,
    requestHandler: { httpAgent: new Agent({ keepAlive: true, maxSockets: 64 }) },
  });
  try {
    const bucket = await createBucket(sdk, 'bench');
    const ours = createS3Store({
      bucket,
      endpoint: env.LOFT_TEST_S3_ENDPOINT,
      region: env.LOFT_TEST_S3_REGION,
      credentials,
      partConcurrency: concurrency,
    });
    const data = randomFillSync(Buffer.allocUnsafe(size));
    console.log(
      `${values['size-mib']} MiB of random bytes, ${runs} runs each, upload() with ${concurrency} parts in flight`,
    );
    const times = { upload: [] as number[], put: [] as number[] };
    // Client CPU seconds: less disturbed by a busy machine than wall time.
    const cpuTimes = { upload: [] as number[], put: [] as number[] };
    for (let i = 0; i < runs; i++) {
      const order = i % 2 === 0 ? (['upload', 'put'] as const) : (['put', 'upload'] as const);
      for (const which of order) {
        const key = `bench/${which}-${i}`;
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        if (which === 'upload') {
          const r = await ours.upload(key, chunks(data));
          if (r.size !== size || !r.multipart)
            throw new Error(`unexpected result ${JSON.stringify(r)}`);
        } else {
          await sdk.send(
            new PutObjectCommand({ Bucket: bucket, Key: key, Body: data, ContentLength: size }),
          );
        }
        const ms = performance.now() - t0;
        const cpu = process.cpuUsage(cpu0);
        const cpuS = (cpu.user + cpu.system) / 1e6;
        times[which].push(ms);
        cpuTimes[which].push(cpuS);
        const head = await ours.head(key);
        if (head?.size !== size) throw new Error(`${key}: stored ${head?.size} bytes`);
        console.log(
          `  run ${i + 1} ${which === 'upload' ? 'upload()  ' : 'PutObject '} ${mbps(size, ms).toFixed(1).padStart(7)} MB/s  (${(ms / 1000).toFixed(2)} s, client CPU ${cpuS.toFixed(2)} s)`,
        );
        // Free the RGW memory before the next run (deleted data waits for RGW's GC).
        await sdk.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
        await promisify(execFile)(rgwScript, ['gc', rgw.dir]);
      }
    }
    const up = mbps(size, median(times.upload));
    const put = mbps(size, median(times.put));
    console.log(`median upload()  ${up.toFixed(1)} MB/s`);
    console.log(`median PutObject ${put.toFixed(1)} MB/s`);
    console.log(`ratio upload()/PutObject = ${(up / put).toFixed(2)}`);
    console.log(
      `median client CPU: upload() ${median(cpuTimes.upload).toFixed(2)} s, PutObject ${median(cpuTimes.put).toFixed(2)} s`,
    );
    const mem = ours.memoryUse;
    console.log(
      `part buffers: peak ${(mem.peak / MiB).toFixed(0)} MiB granted of a ${(mem.budget / MiB).toFixed(0)} MiB budget; ` +
        `${mem.allocations} buffers allocated for ${runs * Math.ceil(size / (8 * MiB))} parts`,
    );
    await ours.close();
  } finally {
    sdk.destroy();
    await rgw.stop();
  }
}

await main();
