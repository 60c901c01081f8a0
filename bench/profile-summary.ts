/**
 * Where a push spends its CPU: sums the self time of `node --cpu-prof` profiles (one per
 * thread) by module (`node_modules/<pkg>`, `node:<internal>`, `src/<dir>/<file>`) and by
 * function, and prints the top entries per thread.
 *
 *   node dist/bench/profile-summary.js DIR [--top 15]
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function moduleOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return `node_modules/${nm[1]}`;
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  const src = /\/dist\/((?:src|bench|test)\/.*)\.js$/.exec(url);
  if (src) return src[1]!;
  return url;
}

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '15' } },
});
const dir = positionals[0];
if (!dir) {
  console.error('usage: profile-summary DIR [--top N]');
  process.exit(2);
}
const top = Number(values.top);
for (const file of readdirSync(dir)
  .filter((f) => f.endsWith('.cpuprofile'))
  .sort()) {
  const p = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  p.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  const byModule = new Map<string, number>();
  const byFn = new Map<string, number>();
  let busy = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    const fn = n.callFrame.functionName || '(anonymous)';
    const mod = moduleOf(n.callFrame.url, fn);
    if (fn !== '(idle)' && fn !== '(program)') busy += us;
    byModule.set(mod, (byModule.get(mod) ?? 0) + us);
    const key = `${fn} ${mod}:${n.callFrame.lineNumber + 1}`;
    byFn.set(key, (byFn.get(key) ?? 0) + us);
  }
  const ms = (us: number) => `${(us / 1000).toFixed(0).padStart(6)} ms`;
  console.log(
    `\n${file}: ${ms(p.endTime - p.startTime)} profiled, ${ms(busy)} busy (not idle/program)`,
  );
  const show = (title: string, m: Map<string, number>) => {
    console.log(`  by ${title}:`);
    for (const [k, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(`    ${ms(us)}  ${k}`);
    }
  };
  show('module', byModule);
  show('function', byFn);
}
