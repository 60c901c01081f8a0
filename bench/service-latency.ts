/**
 * Service mode: watch latency and idle cost, against our own Ceph RGW (started here and
 * stopped at the end).
 *
 *   node dist/bench/service-latency.js [--builds 8] [--idle-s 60] [--real-store]
 *
 * Watch latency: a small closure (3 paths) is built with nix-build; the clock starts when
 * nix-build returns and stops when the top path's narinfo is visible in the bucket (HEAD
 * every 20 ms). By default the service watches a chroot store of its own (served by a
 * second nix-daemon) and the build's closure is copied into it right after nix-build
 * returns (that copy is included: it is when the paths become valid where the service
 * looks). With --real-store the service watches this machine's /nix/store through the
 * system daemon, as it would in production; on a shared machine it then also uploads
 * whatever other people build meanwhile.
 *
 * Idle cost: after the builds, the service sits idle for --idle-s seconds; CPU seconds
 * (user + system, from /proc) over that time, per minute, and RSS at the end.
 *
 * Reconciliation cost: one QueryAllValidPaths of the system store, and the in-memory diff
 * for 100,000 synthetic paths.
 *
 * The machine may be shared with other work: numbers are noisy.
 */
import { rmSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { startRgw } from '../test/support/fixtures.js';
import { makePublicCache } from '../test/support/cache.js';
import { nixBuild } from '../test/support/nix.js';
import {
  ServiceProcess,
  hasNarInfo,
  setupService,
  startChrootStore,
  type ChrootStore,
} from '../test/integration/service/support.js';
import { LocalStore } from '../src/store/local-store.js';
import { diffValidPaths } from '../src/watch/reconcile.js';
import { cpuSeconds, median, memoryMiB } from './measure.js';

const { values } = parseArgs({
  options: {
    builds: { type: 'string', default: '8' },
    'idle-s': { type: 'string', default: '60' },
    'real-store': { type: 'boolean', default: false },
  },
});
const builds = Number(values.builds);
const idleS = Number(values['idle-s']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main() {
  console.log('starting Ceph RGW ...');
  const rgw = await startRgw();
  Object.assign(process.env, rgw.env);
  let store: ChrootStore | undefined;
  let svc: ServiceProcess | undefined;
  let setupDir: string | undefined;
  try {
    const cache = await makePublicCache('bench-svc');
    store = values['real-store'] ? undefined : await startChrootStore();
    const setup = setupService(cache, store);
    setupDir = setup.dir;
    svc = new ServiceProcess(setup, [], { debug: false });
    const t = performance.now();
    await svc.waitEvent('ready', () => true, 120_000);
    console.log(
      `service ready in ${(performance.now() - t).toFixed(0)} ms, watching ${values['real-store'] ? '/nix/store (system daemon)' : 'a chroot store'}`,
    );

    const total: number[] = [];
    const fromValid: number[] = [];
    for (let i = 0; i < builds; i++) {
      const [top] = await nixBuild(`
        let
          a = mk "lat-a" "mkdir $out; echo a > $out/f";
          b = mk "lat-b" "mkdir $out; echo \${a} > $out/f";
        in mk "lat-top" "mkdir $out; echo \${a} \${b} > $out/f"`);
      const t0 = performance.now();
      if (store) await store.add([top!]);
      const tValid = performance.now();
      while (!(await hasNarInfo(cache.client, cache.bucket, top!))) {
        if (performance.now() - t0 > 60_000) throw new Error(`no narinfo for ${top} after 60 s`);
        await sleep(20);
      }
      const t1 = performance.now();
      total.push(t1 - t0);
      fromValid.push(t1 - tValid);
      console.log(
        `  build ${i + 1}: ${(t1 - t0).toFixed(0)} ms from nix-build returning` +
          (store ? ` (${(t1 - tValid).toFixed(0)} ms after the copy into the watched store)` : ''),
      );
    }
    console.log(
      `watch latency over ${builds} builds: median ${median(total).toFixed(0)} ms, max ${Math.max(...total).toFixed(0)} ms (target <= 5000 ms)`,
    );
    if (store) {
      console.log(
        `  after the paths became valid: median ${median(fromValid).toFixed(0)} ms, max ${Math.max(...fromValid).toFixed(0)} ms`,
      );
    }

    await sleep(5000); // let the last batch settle
    const c0 = cpuSeconds(svc.pid);
    const w0 = performance.now();
    await sleep(idleS * 1000);
    const cpu = cpuSeconds(svc.pid) - c0;
    const minutes = (performance.now() - w0) / 60_000;
    const mem = memoryMiB(svc.pid)!;
    console.log(
      `idle for ${idleS} s: ${(cpu / minutes).toFixed(3)} CPU s per minute; RSS ${mem.rss.toFixed(0)} MB (peak ${mem.hwm.toFixed(0)} MB)`,
    );
    const code = await svc.stop();
    console.log(`stopped with exit code ${code}`);

    // Reconciliation: one QueryAllValidPaths of the system store, and the diff at 100k.
    const sys = await LocalStore.open({});
    try {
      const q0 = performance.now();
      const valid = await sys.allValidPaths();
      const q = performance.now() - q0;
      console.log(
        `QueryAllValidPaths on the system store: ${valid.length} paths in ${q.toFixed(0)} ms`,
      );
    } finally {
      await sys.close();
    }
    const nix32 = '0123456789abcdfghijklmnpqrsvwxyz';
    const hp = (i: number) => {
      let s = '';
      for (let k = 0, n = i; k < 8; k++, n = Math.floor(n / 32)) s = nix32[n % 32] + s;
      return 'b'.repeat(24) + s;
    };
    const synthetic = Array.from({ length: 100_000 }, (_, i) => `/nix/store/${hp(i)}-pkg`);
    const seen = new Set(Array.from({ length: 100_000 }, (_, i) => hp(i)));
    const d0 = performance.now();
    diffValidPaths(synthetic, seen);
    console.log(`reconciliation diff of 100,000 paths: ${(performance.now() - d0).toFixed(0)} ms`);
    console.log('(shared machine: numbers are noisy)');
  } finally {
    if (svc?.running) await svc.kill9();
    await store?.stop();
    if (setupDir) rmSync(setupDir, { recursive: true, force: true });
    await rgw.stop();
  }
}

await main();
