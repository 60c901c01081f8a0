import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../support/fixtures.js';
import {
  extractReference,
  renderConfigReference,
  spliceReference,
  REGENERATE_COMMAND,
} from '../../../src/config/reference.js';
import { schema } from '../../../src/config/schema.js';

const readme = () => readFileSync(join(repoRoot, 'README.md'), 'utf8');

test('README.md configuration reference matches the schema', () => {
  const current = extractReference(readme());
  assert.ok(current !== undefined, 'README.md lacks the config-reference markers');
  assert.ok(
    current === renderConfigReference(),
    `README.md's configuration reference is out of date; run: ${REGENERATE_COMMAND}`,
  );
});

test('the reference lists every key with its type, default and description', () => {
  const text = renderConfigReference();
  for (const f of Object.values(schema)) {
    const row = text.split('\n').find((l) => l.startsWith(`| \`${f.key}\``));
    assert.ok(row, `no row for ${f.section}.${f.key}`);
    assert.ok(row.includes(f.defaultDoc.replace(/\|/g, '\\|')), `${f.key}: default`);
    assert.ok(row.includes(f.description.slice(0, 40)), `${f.key}: description`);
    assert.equal(row.includes('†'), !f.seed, `${f.key}: addition marker`);
  }
});

test('splicing replaces only the text between the markers', () => {
  const doc =
    'before\n<!-- config-reference:start -->\nold\n<!-- config-reference:end -->\nafter\n';
  const out = spliceReference(doc, 'new body');
  assert.equal(
    out,
    'before\n<!-- config-reference:start -->\nnew body\n<!-- config-reference:end -->\nafter\n',
  );
  assert.equal(extractReference(out), 'new body');
  assert.throws(() => spliceReference('no markers', 'x'), /markers/);
});
