/**
 * Client CPU per S3 request: small PUTs and HEADs through this tree's S3 store against the
 * same through another tree's (`--before /work/main`, built), same process, same RGW (our
 * own, started here), alternating rounds. CPU is this process's user+sys (every thread)
 * per request; the server's CPU is not in it.
 *
 *   node dist/bench/s3-requests.js [--before /work/main] [--requests 1000] [--rounds 3]
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { loadavg } from 'node:os';
import { createS3Store } from '../src/storage/s3-store.js';
import { createBucket, s3TestEnv, testS3Client } from '../test/support/s3.js';
import { startRgw } from '../test/support/fixtures.js';
import { median } from './measure.js';

const { values } = parseArgs({
  options: {
    before: { type: 'string' },
    requests: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '3' },
  },
});
const n = Number(values.requests);
type MakeStore = typeof createS3Store;
const sides: { name: string; make: MakeStore }[] = [{ name: 'this tree', make: createS3Store }];
if (values.before) {
  const mod = (await import(
    pathToFileURL(join(values.before, 'dist/src/storage/s3-store.js')).href
  )) as { createS3Store: MakeStore };
  sides.push({ name: `before (${values.before})`, make: mod.createS3Store });
}

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const rgw = await startRgw();
try {
  const env = s3TestEnv(rgw.env);
  const client = testS3Client(env);
  const bucket = await createBucket(client, 'reqs');
  client.destroy();
  const body = Buffer.from('StorePath: /nix/store/x\n'.repeat(20));
  const results = new Map<string, { put: number[]; head: number[] }>();
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const side of round % 2 ? [...sides].reverse() : sides) {
      const store = side.make({
        bucket,
        endpoint: env.endpoint,
        credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey },
      });
      await store.put('warm', 'x');
      const measure = async (fn: (i: number) => Promise<unknown>) => {
        const c0 = process.cpuUsage();
        let next = 0;
        await Promise.all(
          Array.from({ length: 8 }, async () => {
            while (next < n) await fn(next++);
          }),
        );
        const c = process.cpuUsage(c0);
        return (c.user + c.system) / n; // microseconds per request
      };
      const put = await measure((i) => store.put(`k${round}-${i}.narinfo`, body));
      const head = await measure((i) => store.head(`k${round}-${i}.narinfo`));
      await store.close();
      const r = results.get(side.name) ?? { put: [], head: [] };
      r.put.push(put);
      r.head.push(head);
      results.set(side.name, r);
      console.log(
        `round ${round + 1} (load ${loadavg()[0]!.toFixed(2)}) ${side.name}: PUT ${put.toFixed(0)} us, HEAD ${head.toFixed(0)} us of client CPU per request`,
      );
    }
  }
  console.log(`\nmedians, client CPU per request (${n} requests, 8 in flight):`);
  for (const [name, r] of results) {
    console.log(
      `  ${name.padEnd(28)} PUT ${median(r.put).toFixed(0)} us, HEAD ${median(r.head).toFixed(0)} us`,
    );
  }
} finally {
  await rgw.stop();
}
