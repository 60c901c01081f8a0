/**
 * Finds the line of a key in TOML text, so schema errors can point at a line as syntax
 * errors do. smol-toml gives no positions for values, and a line-level scan covers the
 * forms loft.toml uses (`[table]` headers and `key = value` lines); dotted or inline-table
 * keys simply get no line number.
 */

function unquote(k: string): string {
  const t = k.trim();
  if ((t.startsWith('"') && t.endsWith('"')) || (t.startsWith("'") && t.endsWith("'"))) {
    return t.slice(1, -1);
  }
  return t;
}

function tableOf(line: string): string | undefined {
  const m = /^\s*\[(?!\[)\s*([^\]]+?)\s*\]\s*(?:#.*)?$/.exec(line);
  if (!m) return undefined;
  return m[1]!.split('.').map(unquote).join('.');
}

function keyOf(line: string): string | undefined {
  const m = /^\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*=/.exec(line);
  return m ? unquote(m[1]!) : undefined;
}

/** 1-based line of `key` directly inside `[table]` ('' for the root), or undefined. */
export function lineOfKey(text: string, table: string, key: string): number | undefined {
  let current = '';
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const t = tableOf(line);
    if (t !== undefined) {
      current = t;
      if (table !== '' && key === '' && t === table) return i + 1;
      continue;
    }
    if (current === table && keyOf(line) === key) return i + 1;
  }
  return undefined;
}

/** The dotted key path assigned on a 1-based line (for syntax errors), if recognisable. */
export function keyPathAtLine(text: string, line: number): string | undefined {
  let current = '';
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < Math.min(line, lines.length); i++) {
    const t = tableOf(lines[i]!);
    if (t !== undefined) current = t;
  }
  const k = keyOf(lines[line - 1] ?? '');
  if (k === undefined) return undefined;
  return current === '' ? k : `${current}.${k}`;
}
