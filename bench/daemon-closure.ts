/**
 * Path info and closure of a 2,000-path closure: Loft (LocalStore.closure over the daemon
 * socket) against `nix path-info -r --json`, which is what the tool Loft replaces runs.
 * Prints wall times and the ratio Loft / nix (target <= 1.0).
 *
 *   node dist/bench/daemon-closure.js [--runs N]
 *
 * Measured, alternating, best of N each:
 *   - whole processes: `nix path-info -r --json ROOT` (as root it reads the store database
 *     itself), the same with `--store daemon` (through the daemon, as any non-root user
 *     does), and `node` running Loft's closure and printing the same JSON;
 *   - in process: a fresh LocalStore (new connection, empty cache) computing the closure,
 *     with the JIT warmed up first (a long-running service's steady state); the node
 *     process above includes Node's start-up, module loading and a cold JIT.
 *
 * The closure is 2,000 `builtins.toFile` paths (a DAG: path i references 2i+1, 2i+2 and
 * 3i+7, depth ~11), added once under a fixed name and reused. The machine is shared, so
 * numbers are noisy.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { LocalStore } from '../src/store/local-store.js';

const exec = promisify(execFile);
const N = 2000;

const EXPR = `
let
  n = ${N};
  files = builtins.genList mk n;
  ref = j: if j < n then "\${builtins.elemAt files j}\\n" else "";
  mk = i: builtins.toFile "loft-bench-closure-\${toString i}"
    ("node \${toString i}\\n" + ref (2 * i + 1) + ref (2 * i + 2) + ref (3 * i + 7));
in builtins.elemAt files 0
`;

async function buildRoot(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'loft-bench-'));
  const file = join(dir, 'closure.nix');
  writeFileSync(file, EXPR);
  const { stdout } = await exec('nix-instantiate', ['--eval', '--read-write-mode', file]);
  return JSON.parse(stdout.trim()) as string;
}

function timeProcess(cmd: string, args: string[]): Promise<{ ms: number; out: string }> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve({ ms: performance.now() - t, out: Buffer.concat(out).toString() })
        : reject(new Error(`${cmd} exited ${code}`)),
    );
  });
}

/** The child-process side: closure + path infos as JSON on stdout, like nix path-info. */
async function child(root: string): Promise<void> {
  const store = await LocalStore.open();
  const infos = await store.closure([root]);
  process.stdout.write(JSON.stringify(infos));
  await store.close();
}

async function main(): Promise<void> {
  const runsArg = process.argv.indexOf('--runs');
  const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;
  const root = await buildRoot();
  const self = fileURLToPath(import.meta.url);
  const nix = ['--extra-experimental-features', 'nix-command', 'path-info', '-r', '--json'];

  const ways: [string, () => Promise<number>][] = [
    ['nix path-info -r --json', async () => (await timeProcess('nix', [...nix, root])).ms],
    [
      'nix path-info --store daemon',
      async () => (await timeProcess('nix', [...nix, '--store', 'daemon', root])).ms,
    ],
    [
      'loft (node process)',
      async () => (await timeProcess(process.execPath, [self, '--child', root])).ms,
    ],
    [
      'loft (in process, fresh store)',
      async () => {
        const t = performance.now();
        const store = await LocalStore.open();
        const infos = await store.closure([root]);
        const ms = performance.now() - t;
        await store.close();
        if (infos.length !== N) throw new Error(`closure has ${infos.length} paths, expected ${N}`);
        return ms;
      },
    ],
  ];

  // Check once that both sides see the same closure.
  const theirs = JSON.parse((await timeProcess('nix', [...nix, root])).out) as { path: string }[];
  const ours = JSON.parse((await timeProcess(process.execPath, [self, '--child', root])).out) as {
    path: string;
  }[];
  if (theirs.length !== N || ours.length !== N)
    throw new Error(`closure sizes ${theirs.length} / ${ours.length}`);
  if (
    JSON.stringify(theirs.map((i) => i.path).sort()) !==
    JSON.stringify(ours.map((i) => i.path).sort())
  ) {
    throw new Error('closures differ');
  }

  // Warm the JIT for the in-process measurement (a long-running service's steady state);
  // the node-process measurement shows the cold cost of a one-shot CLI run.
  for (let i = 0; i < 3; i++) await ways[3]![1]();

  const best = new Map<string, number>();
  const all = new Map<string, number[]>();
  for (let r = 0; r < runs; r++) {
    for (const [name, f] of ways) {
      const ms = await f();
      best.set(name, Math.min(best.get(name) ?? Infinity, ms));
      all.set(name, [...(all.get(name) ?? []), ms]);
    }
  }
  console.log(`closure of ${root}: ${N} paths; ${runs} runs each, best (all runs in brackets)`);
  for (const [name] of ways) {
    const runsMs = all
      .get(name)!
      .map((m) => m.toFixed(0))
      .join(' ');
    console.log(`  ${name.padEnd(32)} ${best.get(name)!.toFixed(1).padStart(7)} ms  [${runsMs}]`);
  }
  const nixLocal = best.get(ways[0]![0])!;
  const nixDaemon = best.get(ways[1]![0])!;
  const loftProc = best.get(ways[2]![0])!;
  const loftIn = best.get(ways[3]![0])!;
  console.log(
    `ratio loft process / nix path-info:                 ${(loftProc / nixLocal).toFixed(2)}`,
  );
  console.log(
    `ratio loft process / nix path-info --store daemon:  ${(loftProc / nixDaemon).toFixed(2)}`,
  );
  console.log(
    `ratio loft in-process / nix path-info:              ${(loftIn / nixLocal).toFixed(2)}`,
  );
}

if (process.argv[2] === '--child') await child(process.argv[3]!);
else await main();
