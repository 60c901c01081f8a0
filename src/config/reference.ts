/**
 * The README's configuration reference, rendered from the schema. `scripts/gen-config-reference.mjs`
 * writes it between the README's config-reference markers; a unit test fails when the
 * README is out of date.
 */
import {
  EXTRA_HEADER_ENV_PREFIX,
  RESERVED_HEADER_NAMES,
  RESERVED_HEADER_PREFIXES,
} from './extra-headers.js';
import { fields, type Field, type Section } from './schema.js';
import { extractSection, spliceSection } from '../util/marked-section.js';

export const REFERENCE_START = '<!-- config-reference:start -->';
export const REFERENCE_END = '<!-- config-reference:end -->';
export const REGENERATE_COMMAND = 'npm run build && node scripts/gen-config-reference.mjs';

const ADDITION = '†';

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function table(section: Section): string[] {
  const rows = fields()
    .map(([, f]) => f)
    .filter((f: Field<unknown>) => f.section === section)
    .map(
      (f) =>
        `| \`${f.key}\`${f.seed ? '' : ` ${ADDITION}`} | ${cell(f.type)} | ${cell(f.defaultDoc)} | ${cell(f.description)} |`,
    );
  return ['| Key | Type | Default | Description |', '| --- | --- | --- | --- |', ...rows];
}

/** The Markdown between the markers (without the markers). */
export function renderConfigReference(): string {
  const p = EXTRA_HEADER_ENV_PREFIX;
  return [
    `<!-- Generated from src/config/schema.ts by \`${REGENERATE_COMMAND}\`; do not edit by hand. -->`,
    '',
    'Loft reads `loft.toml` in the current directory, or the file given with `-c/--config`; the NixOS',
    `module generates it. Keys marked ${ADDITION} are Loft additions to the original \`loft.toml\` format;`,
    'the other keys keep their documented meaning.',
    'Unknown keys and sections are reported as warnings and ignored (the NixOS module\u2019s `extraConfig`',
    'may pass keys this version does not know); every other problem stops Loft with an error naming the',
    'file, the line when it can be found, the key, and what was expected.',
    '',
    'A minimal file:',
    '',
    '```toml',
    '[s3]',
    'bucket = "nix-cache"',
    'endpoint = "http://127.0.0.1:3900"',
    '```',
    '',
    'S3 credentials come from the standard AWS sources (`AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`,',
    '`~/.aws/credentials`, `AWS_PROFILE`), not from this file.',
    '',
    '### `[s3]`',
    '',
    ...table('s3'),
    '',
    '### Extra headers',
    '',
    'Headers for an authentication proxy in front of S3 (e.g. Cloudflare Access) come from two places,',
    'merged into one set that is sent with every request, after SigV4 signing so the proxy can strip them:',
    '',
    '- `[s3.extra_headers]` in the config file, e.g. `"CF-Access-Client-Id" = "..."`. The file may be',
    '  world-readable (the NixOS module puts it in the Nix store), so keep secrets out of it.',
    `- Environment variables \`${p}<NAME>\`: the prefix is stripped and \`_\` becomes \`-\`, so`,
    `  \`${p}CF_ACCESS_CLIENT_SECRET\` sets \`CF-Access-Client-Secret\`. This is the channel`,
    '  for secrets (the NixOS module exports `extraHeadersFile` contents this way).',
    '',
    'Header names are case-insensitive: both sources are matched ignoring case, and Loft sends the names',
    'in lower case. When both set the same header, **the environment wins** (with a warning naming both),',
    'because the environment is where secrets come from. Names must be HTTP tokens. Headers that the',
    'HTTP client or the request signature own are refused, since replacing them breaks the request or',
    `its signature: ${RESERVED_HEADER_NAMES.map((n) => `\`${n}\``).join(', ')}, and any name starting`,
    `with ${RESERVED_HEADER_PREFIXES.map((n) => `\`${n}\``).join(' or ')}. Values must be one line (no CR, LF or`,
    'NUL) and not empty. Errors and logs name the header, never its value.',
    '',
    '### `[loft]`',
    '',
    ...table('loft'),
    '',
    '### Paths',
    '',
    'Relative paths (`local_cache_path`, `signing_key_path`, `daemon_socket`) resolve against the',
    'directory of the config file, not the current directory, so a service and a shell read the same',
    'files; `~/` expands to `$HOME`. The default `local_cache_path` is a state directory rather than',
    'the config directory because the config often lives somewhere read-only (`/etc`, the Nix store).',
    '',
    '### `prune_schedule`',
    '',
    '- An interval: digits with units `d`, `h`, `m`, `s`, largest first: `"24h"`, `"30m"`, `"1h30m"`, `"1d"`.',
    '  It counts from the last prune, which the service remembers, so restarts do not postpone it.',
    '- A daily time `"HH:MM"` (24-hour): `"00:00"`, `"03:30"`. It is **local time** (the `TZ` of the',
    '  service, as with cron and systemd timers); append ` UTC` (`"03:30 UTC"`) for UTC. On a day when',
    '  a DST change skips the time, the prune runs just after the gap; when the time occurs twice, it',
    '  runs at the first. A daily time missed while Loft was down runs as soon as it starts.',
    '',
    '### Signing key name',
    '',
    'A Nix secret key file (from `nix-store --generate-binary-cache-key NAME secret.key public.key`)',
    'holds `NAME:base64`, so it names itself and `signing_key_name` is optional. When set, it must',
    'equal the name in the file, or Loft refuses to start (signatures under a name clients do not',
    'trust would be useless). A key file holding bare base64 needs `signing_key_name` for the name.',
    '',
    '### Flags that override the file',
    '',
    '`--debug` turns on debug logging (there is no key for it, as in the original CLI), and',
    '`--log-format` overrides `log_format`.',
  ].join('\n');
}

const MARKERS = { start: REFERENCE_START, end: REFERENCE_END };

/** Replace the text between the markers; throws if the markers are missing. */
export function spliceReference(readme: string, body: string): string {
  return spliceSection(readme, MARKERS, body);
}

/** The current text between the markers, or undefined if they are missing. */
export function extractReference(readme: string): string | undefined {
  return extractSection(readme, MARKERS);
}
