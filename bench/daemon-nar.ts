/**
 * NAR throughput for one store path, three ways, in the same run:
 *   - through the daemon (NarFromPath over the socket, its end found by the NAR parser),
 *   - by encoding the files directly (src/nix/nar-encode.ts over src/store/nar-fs.ts),
 *   - `nix-store --dump PATH` to /dev/null, as the reference.
 * Both sources are measured raw and verified (checked against the registered narHash and
 * narSize, i.e. with sha256 on every byte, as `LocalStore.narStream` does). Prints MB/s.
 *
 *   node dist/bench/daemon-nar.js [--runs N]
 *
 * The two test paths (one 256 MiB file; ~20,000 files of 8 KiB) are built once with Nix
 * under a fixed salt and reused by later runs. The store is read from the page cache
 * after a warm-up, so this measures CPU and IPC, not the disk. Runs alternate between the
 * ways and the best of each is reported; the machine is shared, so numbers are noisy.
 */
import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { DaemonClient } from '../src/daemon/client.js';
import { LocalStore } from '../src/store/local-store.js';
import { dumpPath } from '../src/store/nar-fs.js';
import { verifyNar } from '../src/store/nar-verify.js';
import { nixBuild } from '../test/support/nix.js';

const SALT = 'loft-bench-nar-v1';

async function drain(s: AsyncIterable<unknown>): Promise<number> {
  let n = 0;
  for await (const c of s) n += (c as Buffer).length;
  return n;
}

function dumpToNull(path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('nix-store', ['--dump', path], { stdio: ['ignore', 'pipe', 'inherit'] });
    let n = 0;
    child.stdout.on('data', (c: Buffer) => (n += c.length));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(n) : reject(new Error(`nix-store --dump exited ${code}`)),
    );
  });
}

async function main() {
  const runsArg = process.argv.indexOf('--runs');
  const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 3;
  console.log('building test paths (once; reused later) ...');
  const [big, many] = await nixBuild(
    `[
      (mk "loft-bench-nar-big" "head -c 268435456 /dev/urandom > $out")
      (mk "loft-bench-nar-many" "mkdir $out && cd $out && head -c 163840000 /dev/urandom | split -a 5 -b 8192 - f")
    ]`,
    SALT,
  );
  const daemon = await DaemonClient.open();
  const store = await LocalStore.open();
  console.log(
    `daemon: ${daemon.endpoint}, Nix ${daemon.daemonInfo.daemonNixVersion}; ${runs} runs, best shown`,
  );

  const ways: [string, (p: string) => Promise<number>][] = [
    ['nix-store --dump > /dev/null', dumpToNull],
    ['daemon NarFromPath (raw)', async (p) => drain(await daemon.narFromPath(p))],
    ['filesystem encode (raw)', (p) => drain(Readable.from(dumpPath(p)))],
    ['daemon narStream (verified)', (p) => drain(store.narStream(p))],
    [
      'filesystem encode (verified)',
      async (p) => drain(Readable.from(dumpPath(p)).pipe(verifyNar(p, await store.pathInfo(p)))),
    ],
  ];
  for (const [label, path] of [
    ['one 256 MiB file', big!],
    ['20,000 files of 8 KiB', many!],
  ] as const) {
    const best = new Map<string, number>();
    let size = 0;
    for (const [, f] of ways) size = await f(path); // warm the page cache and the JIT
    for (let r = 0; r < runs; r++) {
      for (const [name, f] of ways) {
        const t = performance.now();
        const n = await f(path);
        const s = (performance.now() - t) / 1000;
        if (n !== size) throw new Error(`${name}: ${n} bytes, expected ${size}`);
        best.set(name, Math.max(best.get(name) ?? 0, n / 1e6 / s));
      }
    }
    console.log(`\n${label} (NAR ${(size / 1e6).toFixed(1)} MB, ${path}):`);
    const ref = best.get(ways[0]![0])!;
    for (const [name] of ways) {
      const v = best.get(name)!;
      console.log(
        `  ${name.padEnd(34)} ${v.toFixed(0).padStart(6)} MB/s  (${(v / ref).toFixed(2)}x nix-store --dump)`,
      );
    }
  }
  await Promise.all([daemon.close(), store.close()]);
}

await main();
