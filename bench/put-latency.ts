/**
 * The floor of closure-ordered publication: how long one small PUT (a narinfo) takes, one
 * after another, through this tree's S3 store, against a Ceph RGW of our own (bluestore,
 * as bench/push.ts uses): directly on loopback (RGW's own latency), through
 * bench/netsim.ts with no delay (the simulator's own cost), and through it with a round
 * trip and a bandwidth cap (what one level of a deep chain costs at best).
 *
 *   node dist/bench/put-latency.js [--requests 200] [--rtt-ms 40] [--mbit 200] [--memstore]
 *
 * A deep chain cannot publish faster than requests x the last line's median.
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { createS3Store } from '../src/storage/s3-store.js';
import { createBucket, s3TestEnv, testS3Client } from '../test/support/s3.js';
import { startRgw } from '../test/support/fixtures.js';
import { median } from './measure.js';
import { startNetSim, throughSim, type LinkShape } from './netsim.js';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '200' },
    'rtt-ms': { type: 'string', default: '40' },
    mbit: { type: 'string', default: '200' },
    memstore: { type: 'boolean', default: false },
  },
});
const n = Number(values.requests);
const rgw = await startRgw(values.memstore ? {} : { OSD_STORE: 'bluestore' });
try {
  const env = s3TestEnv(rgw.env);
  const client = testS3Client(env);
  const bucket = await createBucket(client, 'lat');
  client.destroy();
  // About a narinfo's size.
  const body = Buffer.from('StorePath: /nix/store/x\n'.repeat(30));
  const pct = (xs: number[], p: number) =>
    [...xs].sort((a, b) => a - b)[Math.floor(p * xs.length)]!;
  const run = async (label: string, link: LinkShape | undefined) => {
    const u = new URL(env.endpoint);
    const sim = link
      ? await startNetSim({ host: u.hostname, port: Number(u.port) }, link)
      : undefined;
    const endpoint = sim ? throughSim(env.endpoint, sim) : env.endpoint;
    const store = createS3Store({
      bucket,
      endpoint,
      credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey },
    });
    try {
      await store.check();
      const ms: number[] = [];
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        await store.put(`${label.replace(/\W+/g, '-')}-${i}.narinfo`, body);
        ms.push(performance.now() - t);
      }
      console.log(
        `${label.padEnd(34)} median ${median(ms).toFixed(1)} ms, p10 ${pct(ms, 0.1).toFixed(1)}, ` +
          `p90 ${pct(ms, 0.9).toFixed(1)}, total ${(ms.reduce((a, b) => a + b, 0) / 1000).toFixed(2)} s ` +
          `(load ${loadavg()[0]!.toFixed(2)})`,
      );
    } finally {
      await store.close();
      await sim?.close();
    }
  };
  console.log(`${n} small PUTs one after another, ${values.memstore ? 'memstore' : 'bluestore'}:`);
  const rttMs = Number(values['rtt-ms']);
  const mbit = Number(values.mbit);
  await run('loopback (RGW alone)', undefined);
  await run('netsim, 0 ms, no cap', { rttMs: 0, mbit: 0 });
  await run(`netsim, ${rttMs} ms, ${mbit} Mbit/s`, { rttMs, mbit });
} finally {
  await rgw.stop();
}
