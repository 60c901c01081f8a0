import { test } from 'node:test';
import assert from 'node:assert/strict';
import { helpText } from '../../../src/cli/help.js';
import { FLAGS } from '../../../src/cli/flags.js';
import { EXIT_CODE_DOCS } from '../../../src/cli/exit-codes.js';

const help = helpText();
/** The help with wrapped descriptions joined back into one line per flag. */
const joined = help.replace(/\n {20,}/g, ' ');

test('help has the usage line and lists every flag with its description and default', () => {
  assert.match(help, /^Usage: loft \[OPTIONS\]$/m);
  for (const f of FLAGS) {
    const spelled = `${f.short ? `-${f.short}, ` : ''}--${f.long}${f.value ? ` <${f.value}>` : ''}`;
    const line = joined.split('\n').find((l) => l.includes(spelled));
    assert.ok(line, `--${f.long} missing from help`);
    assert.ok(line.includes(f.description), `--${f.long}: description`);
    if (f.default) assert.ok(line.includes(`[default: ${f.default}]`), `--${f.long}: default`);
  }
  assert.match(
    joined,
    /-c, --config <CONFIG> +Path to the configuration file \[default: loft\.toml\]/,
  );
});

test('additions are listed apart from the seed flags', () => {
  const [seedPart, addedPart] = help.split('Additional options:');
  assert.ok(addedPart);
  for (const f of FLAGS) {
    assert.ok((f.seed ? seedPart : addedPart)!.includes(`--${f.long}`), f.long);
  }
});

test('help documents how flags combine and every exit code', () => {
  assert.match(
    joined,
    /--clear-cache, --reset-initial-scan, --populate-cache, --upload-path, --prune/,
  );
  assert.match(joined, /runs as a service/);
  for (const { code, meaning } of EXIT_CODE_DOCS) {
    assert.match(
      help,
      new RegExp(`^ +${code}  ${meaning.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'),
    );
  }
});

test('help fits in 100 columns', () => {
  for (const line of help.split('\n')) assert.ok(line.length <= 100, line);
});
