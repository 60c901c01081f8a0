/**
 * Reading S3's XML answers: the few flat elements the hot operations need (ListObjectsV2,
 * ListMultipartUploads, InitiateMultipartUpload, DeleteObjects, errors). S3 answers are
 * machine-written, without CDATA or comments in the elements we read, so element text is
 * found by tag and its entities decoded; no general XML parser is needed.
 */

const ENTITIES: Record<string, string> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
};

export function decodeXmlText(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (m, e: string) => {
    if (e[0] === '#') {
      const cp = e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return Number.isFinite(cp) && cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
    }
    return ENTITIES[e] ?? m;
  });
}

/** The decoded text of the first `<tag>...</tag>` (or `<tag/>`: ''), or undefined. */
export function xmlText(xml: string, tag: string): string | undefined {
  const open = xml.indexOf(`<${tag}>`);
  if (open < 0) return xml.includes(`<${tag}/>`) ? '' : undefined;
  const start = open + tag.length + 2;
  const end = xml.indexOf(`</${tag}>`, start);
  if (end < 0) return undefined;
  return decodeXmlText(xml.slice(start, end));
}

/** The raw inner XML of every `<tag>...</tag>` at any depth, in order. */
export function xmlBlocks(xml: string, tag: string): string[] {
  const out: string[] = [];
  const open = `<${tag}>`;
  const close = `</${tag}>`;
  let at = 0;
  for (;;) {
    const i = xml.indexOf(open, at);
    if (i < 0) return out;
    const j = xml.indexOf(close, i + open.length);
    if (j < 0) return out;
    out.push(xml.slice(i + open.length, j));
    at = j + close.length;
  }
}

/** `<Root>` of a document, after any XML declaration. */
export function xmlRoot(xml: string): string | undefined {
  return /^\s*(?:<\?xml[^>]*\?>\s*)?<([A-Za-z][\w-]*)[\s>/]/.exec(xml)?.[1];
}

export function escapeXml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => `&${{ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": 'apos' }[c]!};`,
  );
}
