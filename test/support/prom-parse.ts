/**
 * A strict parser of the Prometheus text exposition format (0.0.4), written for tests from
 * the format's description, independent of src/metrics: it rejects what Prometheus would
 * (bad names, bad label syntax or escapes, unparsable values, a sample before its TYPE,
 * a series twice, histogram buckets that are not cumulative or lack +Inf).
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help?: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;

function parseValue(s: string, line: number): number {
  if (s === '+Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (s === 'NaN') return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) {
    throw new Error(`line ${line}: bad value ${JSON.stringify(s)}`);
  }
  return Number(s);
}

function parseLabels(text: string, line: number): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {};
  let i = 1; // after '{'
  for (;;) {
    if (text[i] === '}') return { labels, rest: text.slice(i + 1) };
    const m = LABEL_NAME.exec(text.slice(i));
    if (!m) throw new Error(`line ${line}: bad label name at ${JSON.stringify(text.slice(i))}`);
    const name = m[0];
    i += name.length;
    if (text[i] !== '=' || text[i + 1] !== '"') throw new Error(`line ${line}: expected ="`);
    i += 2;
    let value = '';
    for (;;) {
      const c = text[i];
      if (c === undefined) throw new Error(`line ${line}: unterminated label value`);
      if (c === '"') break;
      if (c === '\\') {
        const n = text[i + 1];
        if (n === '\\') value += '\\';
        else if (n === '"') value += '"';
        else if (n === 'n') value += '\n';
        else throw new Error(`line ${line}: bad escape \\${n}`);
        i += 2;
      } else {
        value += c;
        i++;
      }
    }
    i++;
    if (name in labels) throw new Error(`line ${line}: label ${name} twice`);
    labels[name] = value;
    if (text[i] === ',') i++;
    else if (text[i] !== '}') throw new Error(`line ${line}: expected , or }`);
  }
}

const familyOf = (name: string, families: Map<string, Family>) => {
  if (families.has(name)) return families.get(name)!;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (name.endsWith(suffix)) {
      const f = families.get(name.slice(0, -suffix.length));
      if (f && (f.type === 'histogram' || f.type === 'summary')) return f;
    }
  }
  return undefined;
};

export function parsePrometheusText(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  text
    .slice(0, -1)
    .split('\n')
    .forEach((raw, idx) => {
      const line = idx + 1;
      if (raw === '') return;
      if (raw.startsWith('#')) {
        const m = /^# (HELP|TYPE) ([^ ]+) ?(.*)$/.exec(raw);
        if (!m) return; // other comments are allowed
        const [, kind, name, rest] = m as unknown as [string, string, string, string];
        if (!NAME.test(name) || NAME.exec(name)![0] !== name) {
          throw new Error(`line ${line}: bad metric name ${name}`);
        }
        const f = families.get(name) ?? { name, type: 'untyped' as const, samples: [] };
        if (kind === 'TYPE') {
          if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) {
            throw new Error(`line ${line}: bad type ${rest}`);
          }
          if (f.samples.length > 0) throw new Error(`line ${line}: TYPE after samples`);
          f.type = rest as Family['type'];
        } else f.help = rest;
        families.set(name, f);
        return;
      }
      const m = NAME.exec(raw);
      if (!m) throw new Error(`line ${line}: bad sample ${JSON.stringify(raw)}`);
      const name = m[0];
      let rest = raw.slice(name.length);
      let labels: Record<string, string> = {};
      if (rest.startsWith('{')) ({ labels, rest } = parseLabels(rest, line));
      const parts = rest.trim().split(/\s+/);
      if (!rest.startsWith(' ') || parts.length < 1 || parts.length > 2) {
        throw new Error(`line ${line}: expected " value [timestamp]"`);
      }
      const value = parseValue(parts[0]!, line);
      const f = familyOf(name, families);
      if (!f || f.type === 'untyped')
        throw new Error(`line ${line}: ${name} has no TYPE before it`);
      if (f.type === 'counter' && (value < 0 || Number.isNaN(value))) {
        throw new Error(`line ${line}: counter ${name} is ${value}`);
      }
      const id = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
      if (seen.has(id)) throw new Error(`line ${line}: series ${id} twice`);
      seen.add(id);
      f.samples.push({ name, labels, value });
    });
  for (const f of families.values()) {
    if (f.type !== 'histogram') continue;
    const buckets = f.samples.filter((s) => s.name === `${f.name}_bucket`);
    const count = f.samples.find((s) => s.name === `${f.name}_count`);
    if (!buckets.some((b) => b.labels.le === '+Inf') || !count) {
      throw new Error(`histogram ${f.name} lacks +Inf or _count`);
    }
    let last = -1;
    for (const b of buckets) {
      if (b.value < last) throw new Error(`histogram ${f.name}: buckets not cumulative`);
      last = b.value;
    }
    if (last !== count.value) throw new Error(`histogram ${f.name}: +Inf != _count`);
  }
  return families;
}

/** The value of one series (labels matched exactly), or undefined. */
export function sampleValue(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name !== name) continue;
      const a = Object.entries(s.labels).sort();
      const b = Object.entries(labels).sort();
      if (JSON.stringify(a) === JSON.stringify(b)) return s.value;
    }
  }
  return undefined;
}
