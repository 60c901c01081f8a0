/**
 * A small Prometheus registry: counters, gauges (set, or read at scrape time) and
 * histograms with labels, rendered in the text exposition format (version 0.0.4). Pure:
 * the HTTP listener is server.ts.
 */
export type Labels = Readonly<Record<string, string>>;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function labelText(labels: Labels): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return '';
  return `{${keys.map((k) => `${k}="${escapeLabel(labels[k]!)}"`).join(',')}}`;
}

abstract class Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
    readonly labelNames: readonly string[],
  ) {
    if (!NAME.test(name)) throw new Error(`invalid metric name ${JSON.stringify(name)}`);
    for (const l of labelNames) {
      if (!LABEL.test(l) || l.startsWith('__') || l === 'le') {
        throw new Error(`invalid label name ${JSON.stringify(l)} for ${name}`);
      }
    }
  }

  protected key(labels: Labels): string {
    const given = Object.keys(labels).sort();
    const want = [...this.labelNames].sort();
    if (given.join(',') !== want.join(',')) {
      throw new Error(`${this.name} takes labels [${want.join(', ')}], got [${given.join(', ')}]`);
    }
    return JSON.stringify(this.labelNames.map((n) => labels[n]));
  }

  protected labelsOf(key: string): Labels {
    const values = JSON.parse(key) as string[];
    return Object.fromEntries(this.labelNames.map((n, i) => [n, values[i]!]));
  }

  abstract samples(): string[];

  render(): string {
    return [
      `# HELP ${this.name} ${escapeHelp(this.help)}`,
      `# TYPE ${this.name} ${this.type}`,
      ...this.samples(),
    ].join('\n');
  }
}

export class Counter extends Metric {
  readonly #values = new Map<string, number>();

  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    super(name, help, 'counter', labelNames);
    if (labelNames.length === 0) this.#values.set(this.key({}), 0);
  }

  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new Error(`${this.name}: a counter only goes up (got ${by})`);
    const k = this.key(labels);
    this.#values.set(k, (this.#values.get(k) ?? 0) + by);
  }

  get(labels: Labels = {}): number {
    return this.#values.get(this.key(labels)) ?? 0;
  }

  samples(): string[] {
    return [...this.#values].map(
      ([k, v]) => `${this.name}${labelText(this.labelsOf(k))} ${formatValue(v)}`,
    );
  }
}

export class Gauge extends Metric {
  readonly #values = new Map<string, number>();

  /** `collect`, when given, is read at every scrape instead of the set values. */
  constructor(
    name: string,
    help: string,
    private readonly collect?: () => number | undefined,
  ) {
    super(name, help, 'gauge', []);
  }

  set(v: number): void {
    this.#values.set(this.key({}), v);
  }

  samples(): string[] {
    const v = this.collect ? this.collect() : this.#values.get(this.key({}));
    return v === undefined ? [] : [`${this.name} ${formatValue(v)}`];
  }
}

export class Histogram extends Metric {
  readonly #counts: number[];
  #sum = 0;
  #count = 0;

  constructor(
    name: string,
    help: string,
    readonly buckets: readonly number[],
  ) {
    super(name, help, 'histogram', []);
    for (let i = 1; i < buckets.length; i++) {
      if (!(buckets[i]! > buckets[i - 1]!)) throw new Error(`${name}: buckets must increase`);
    }
    this.#counts = buckets.map(() => 0);
  }

  observe(v: number): void {
    this.#sum += v;
    this.#count++;
    this.buckets.forEach((b, i) => {
      if (v <= b) this.#counts[i]!++;
    });
  }

  samples(): string[] {
    return [
      ...this.buckets.map(
        (b, i) => `${this.name}_bucket{le="${formatValue(b)}"} ${this.#counts[i]}`,
      ),
      `${this.name}_bucket{le="+Inf"} ${this.#count}`,
      `${this.name}_sum ${formatValue(this.#sum)}`,
      `${this.name}_count ${this.#count}`,
    ];
  }
}

export class Registry {
  readonly #metrics: Metric[] = [];

  add<M extends Metric>(m: M): M {
    if (this.#metrics.some((x) => x.name === m.name)) throw new Error(`${m.name} registered twice`);
    this.#metrics.push(m);
    return m;
  }

  /** The whole registry in the text exposition format. */
  render(): string {
    return `${this.#metrics.map((m) => m.render()).join('\n')}\n`;
  }
}

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
