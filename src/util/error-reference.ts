/**
 * The README's table of error codes, generated from the registry (src/util/error-codes.ts)
 * by scripts/gen-error-reference.mjs, as the configuration reference is from the schema.
 */
import { ERROR_CODES, type ErrorCodeSpec, type FailureMeaning } from './error-codes.js';
import { exitCodeForKind } from './failure-policy.js';
import { extractSection, spliceSection } from './marked-section.js';

export const ERRORS_START = '<!-- error-codes:start -->';
export const ERRORS_END = '<!-- error-codes:end -->';
export const ERRORS_REGENERATE = 'npm run build && node scripts/gen-error-reference.mjs';

const MEANING_TEXT: Record<FailureMeaning, string> = {
  'retry-request': 'retry the request',
  'retry-path': 'retry the path',
  outage: 'outage',
  fatal: 'fatal',
  path: 'path failure',
};

function exitText(kind: ErrorCodeSpec['kind']): string {
  return kind === 'from-cause' ? "the cause's" : String(exitCodeForKind(kind));
}

export function renderErrorReference(): string {
  const rows = Object.entries(ERROR_CODES).map(
    ([code, s]: [string, ErrorCodeSpec]) =>
      `| \`${code}\` | ${MEANING_TEXT[s.meaning]} | ${exitText(s.kind)} | ${s.text} |`,
  );
  return [
    `<!-- Generated from src/util/error-codes.ts by \`${ERRORS_REGENERATE}\`; do not edit by hand. -->`,
    '',
    '| Code | Meaning | Exit | What happened |',
    '| --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}

const MARKERS = { start: ERRORS_START, end: ERRORS_END };

/** Replace the table between the markers; throws if the markers are missing. */
export function spliceErrorReference(readme: string, body: string): string {
  return spliceSection(readme, MARKERS, body);
}

/** The current table between the markers, or undefined if they are missing. */
export function extractErrorReference(readme: string): string | undefined {
  return extractSection(readme, MARKERS);
}
