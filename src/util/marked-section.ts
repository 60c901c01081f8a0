/**
 * A generated section of a text file (the README's configuration reference and error
 * table), between a start and an end marker line. Pure.
 */
export interface Markers {
  start: string;
  end: string;
}

/** Replace the text between the markers; throws if the markers are missing. */
export function spliceSection(text: string, m: Markers, body: string): string {
  const start = text.indexOf(m.start);
  const end = text.indexOf(m.end);
  if (start === -1 || end === -1 || end < start) {
    throw new Error(`README.md lacks the ${m.start} ... ${m.end} markers`);
  }
  return `${text.slice(0, start + m.start.length)}\n${body}\n${text.slice(end)}`;
}

/** The current text between the markers, or undefined if they are missing. */
export function extractSection(text: string, m: Markers): string | undefined {
  const start = text.indexOf(m.start);
  const end = text.indexOf(m.end);
  if (start === -1 || end === -1 || end < start) return undefined;
  return text
    .slice(start + m.start.length, end)
    .replace(/^\n/, '')
    .replace(/\n$/, '');
}
