/** `loft --help`: rendered from the flag table and the exit codes, so it cannot drift. */
import { FLAGS, type FlagDoc } from './flags.js';
import { EXIT_CODE_DOCS } from './exit-codes.js';

function left(f: FlagDoc): string {
  const short = f.short === undefined ? '    ' : `-${f.short}, `;
  const value = f.value === undefined ? '' : ` <${f.value}>`;
  return `${short}--${f.long}${value}`;
}

const COLUMNS = 100;

/** Word-wrap `text` into lines of at most `room` characters. */
function wrap(text: string, room: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > room) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

function row(f: FlagDoc, width: number): string {
  const dflt = f.default === undefined ? '' : ` [default: ${f.default}]`;
  const indent = 2 + width + 2;
  const [first = '', ...rest] = wrap(`${f.description}${dflt}`, COLUMNS - indent);
  return [`  ${left(f).padEnd(width)}  ${first}`, ...rest.map((l) => ' '.repeat(indent) + l)].join(
    '\n',
  );
}

export function helpText(): string {
  const width = Math.max(...FLAGS.map((f) => left(f).length));
  const seed = FLAGS.filter((f) => f.seed);
  const added = FLAGS.filter((f) => !f.seed);
  const codes = EXIT_CODE_DOCS.map((c) => `  ${String(c.code).padStart(3)}  ${c.meaning}`);
  return [
    'loft: keep a Nix binary cache in S3-compatible storage',
    '',
    'Usage: loft [OPTIONS]',
    '',
    'Options:',
    ...seed.map((f) => row(f, width)),
    '',
    'Additional options:',
    ...added.map((f) => row(f, width)),
    '',
    'How options combine:',
    '  With no action option, Loft runs as a service: initial scan (if enabled), then it',
    '  watches the store and uploads new paths, and prunes on schedule if enabled.',
    '  Action options do their work and exit. Several may be given; they always run in this',
    '  order and the first failure stops the rest:',
    '    --clear-cache, --reset-initial-scan, --populate-cache, --upload-path, --prune, --verify',
    '  --force-scan modifies the service or --upload-path; --dry-run modifies --upload-path',
    '  and --prune; --deep and --repair modify --verify; --status, --post-build-hook,',
    '  --watch-exec and --doctor stand alone.',
    '  --watch-exec -- COMMAND [ARGS...]: everything after -- is the command to run.',
    '',
    'Exit codes:',
    ...codes,
    '',
  ].join('\n');
}
