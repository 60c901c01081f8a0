// The import layering of design.md is enforced by eslint.config.js; this pins that it bites.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ESLint } from 'eslint';
import { repoRoot } from '../support/fixtures.js';

const eslint = new ESLint({ cwd: repoRoot });

async function violations(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${repoRoot}/${file}` });
  return (result?.messages ?? [])
    .filter((m) => m.ruleId === 'no-restricted-imports')
    .map((m) => m.message);
}

test('src/nix may not touch the filesystem, the network or upper layers', async () => {
  assert.equal((await violations('src/nix/x.ts', "import 'node:fs';\n")).length, 1);
  assert.equal((await violations('src/nix/x.ts', "import 'net';\n")).length, 1);
  assert.equal((await violations('src/nix/x.ts', "import '../store/y.js';\n")).length, 1);
  assert.deepEqual(await violations('src/nix/x.ts', "import 'node:crypto';\n"), []);
});

test('only src/storage imports the AWS SDK; only src/index imports SQLite', async () => {
  assert.equal((await violations('src/upload/x.ts', "import '@aws-sdk/client-s3';\n")).length, 1);
  assert.deepEqual(await violations('src/storage/x.ts', "import '@aws-sdk/client-s3';\n"), []);
  assert.equal((await violations('src/storage/x.ts', "import 'better-sqlite3';\n")).length, 1);
});

test('lower layers may not import upper ones; upper may import lower', async () => {
  assert.equal((await violations('src/storage/x.ts', "import '../upload/y.js';\n")).length, 1);
  assert.equal((await violations('src/daemon/sub/x.ts', "import '../../cli/y.js';\n")).length, 1);
  assert.deepEqual(await violations('src/upload/x.ts', "import '../storage/y.js';\n"), []);
  assert.deepEqual(await violations('src/cli/x.ts', "import '../service/y.js';\n"), []);
});
