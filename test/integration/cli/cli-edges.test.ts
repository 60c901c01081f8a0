/**
 * The edges of the one-shot CLI through the real `loft` binary against real RGW: endpoint
 * mistakes named with a hint, a push without a signing key warned about once,
 * `--log-format json` lines and summary checked against the documented schema, `--dry-run`
 * listing paths per category, and no later action after a failed one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nixBuild, nixRequisites } from '../../support/nix.js';
import { checkCacheIntegrity, makePublicCache } from '../../support/cache.js';
import { listKeysRaw, s3TestEnv } from '../../support/s3.js';
import { repoRoot } from '../../support/fixtures.js';
import {
  hasNarInfo,
  runLoft,
  ServiceProcess,
  setupService,
  startChrootStore,
} from '../service/support.js';
import {
  checkFields,
  checkPushLine,
  DRY_RUN_FIELDS,
  PUSH_EVENTS,
  SUMMARY_FIELDS,
} from '../../../src/cli/log-schema.js';

test('an s3.endpoint that ends in the bucket name is a config error saying to drop it', async () => {
  const cache = await makePublicCache('edge-endpoint');
  const s3 = s3TestEnv();
  const setup = setupService(
    cache,
    undefined,
    {},
    {
      endpoint: JSON.stringify(`${s3.endpoint}/${cache.bucket}`),
    },
  );
  const [p] = await nixBuild(`mk "edge-endpoint" "echo x > $out"`);
  const r = await runLoft(['-c', setup.toml, '--upload-path', p!], setup.env);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, new RegExp(`ends in the bucket name "${cache.bucket}"`));
  assert.equal(
    r.stderr.match(
      new RegExp(`hint: set s3\\.endpoint = "${s3.endpoint}" and keep s3\\.bucket`, 'g'),
    )?.length,
    1,
    r.stderr,
  );
  assert.deepEqual(await listKeysRaw(cache.client, cache.bucket), []);
});

test('https:// pointed at a plain-HTTP server is a config error saying to use http://', async () => {
  const cache = await makePublicCache('edge-tls');
  const s3 = s3TestEnv();
  const setup = setupService(
    cache,
    undefined,
    {},
    {
      endpoint: JSON.stringify(s3.endpoint.replace(/^http:/, 'https:')),
    },
  );
  const [p] = await nixBuild(`mk "edge-tls" "echo x > $out"`);
  const r = await runLoft(['-c', setup.toml, '--upload-path', p!], setup.env);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /says https:\/\/, but the server there answers plain HTTP/);
  assert.match(r.stderr, new RegExp(`hint: set s3\\.endpoint = "${s3.endpoint}"`));
  assert.ok(!/\n\s+at /.test(r.stderr), `a stack trace reached the user: ${r.stderr}`);
});

test('a push without a signing key warns once how to make one and why Nix refuses the paths', async () => {
  const cache = await makePublicCache('edge-unsigned');
  const setup = setupService(cache, undefined);
  const toml = readFileSync(setup.toml, 'utf8')
    .split('\n')
    .filter((l) => !l.startsWith('signing_key_path'))
    .join('\n');
  writeFileSync(setup.toml, toml);
  const [p] = await nixBuild(`mk "edge-unsigned" "echo x > $out"`);
  const r = await runLoft(['-c', setup.toml, '--upload-path', p!], setup.env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr.match(/the uploads are not signed/g)?.length, 1, r.stderr);
  assert.match(r.stderr, /Nix refuses unsigned paths unless its users set require-sigs = false/);
  assert.equal(r.stderr.match(/nix-store --generate-binary-cache-key/g)?.length, 1, r.stderr);
  const status = await runLoft(['-c', setup.toml, '--status'], setup.env);
  assert.match(status.stdout, /^signing: +uploads are NOT signed/m, status.stdout);
  const signed = setupService(cache, undefined);
  const st2 = await runLoft(['-c', signed.toml, '--status', '--log-format', 'json'], signed.env);
  assert.equal(
    (JSON.parse(st2.stdout) as { signing?: { signed?: boolean } }).signing?.signed,
    true,
    st2.stdout,
  );
});

test('--log-format json: every line and the stdout summary follow the documented schema', async () => {
  const cache = await makePublicCache('edge-json');
  const setup = setupService(cache, undefined);
  const [top] = await nixBuild(`
    let dep = mk "edge-json-dep" "mkdir $out; echo dep > $out/f";
    in mk "edge-json-top" "echo \${dep} > $out"`);
  const c = ['-c', setup.toml, '--log-format', 'json'];

  const dry = await runLoft([...c, '--upload-path', top!, '--dry-run'], setup.env);
  assert.equal(dry.code, 0, dry.stderr);
  const plan = JSON.parse(dry.stdout) as Record<string, unknown> & {
    toUpload: { path: string; narSize: number }[];
  };
  assert.deepEqual(checkFields(plan, DRY_RUN_FIELDS), []);
  assert.equal(plan.event, 'dry-run');
  assert.deepEqual(plan.toUpload.map((i) => i.path).sort(), (await nixRequisites([top!])).sort());
  assert.ok(plan.toUpload.every((i) => i.narSize > 0));

  const run = await runLoft([...c, '--upload-path', top!], setup.env);
  assert.equal(run.code, 0, run.stderr);
  const lines = run.stderr
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  for (const l of lines) assert.deepEqual(checkPushLine(l), [], JSON.stringify(l));
  const uploaded = lines.filter((l) => l.event === 'uploaded');
  assert.equal(uploaded.length, 2);
  for (const u of uploaded)
    assert.ok(await hasNarInfo(cache.client, cache.bucket, u.path as string));
  const summary = JSON.parse(run.stdout) as Record<string, unknown>;
  assert.deepEqual(checkFields(summary, SUMMARY_FIELDS), []);
  assert.equal(summary.complete, true);
  assert.equal((summary.uploaded as unknown[]).length, 2);
  assert.deepEqual((await checkCacheIntegrity(cache.client, cache.bucket)).problems, []);

  // The README documents every event of the schema.
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  for (const ev of Object.keys(PUSH_EVENTS)) {
    assert.ok(readme.includes(`| \`${ev}\` |`), `README's JSON table lacks ${ev}`);
  }
});

test('--dry-run text lists each path under its category with its size, and counts once', async () => {
  const cache = await makePublicCache('edge-dry');
  const setup = setupService(cache, undefined);
  const [dep] = await nixBuild(`mk "edge-dry-dep" "echo dep > $out"`, 'edge-dry-salt');
  const [top] = await nixBuild(
    `let dep = mk "edge-dry-dep" "echo dep > $out"; in mk "edge-dry-top" "echo \${dep} > $out"`,
    'edge-dry-salt',
  );
  const c = ['-c', setup.toml];
  assert.equal((await runLoft([...c, '--upload-path', dep!], setup.env)).code, 0);
  const dry = await runLoft([...c, '--upload-path', top!, '--dry-run'], setup.env);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, new RegExp(`^to upload:\\n  ${top}  \\d+ B\\n`, 'm'));
  assert.match(dry.stdout, new RegExp(`^already cached:\\n  ${dep}  \\d+ B\\n`, 'm'));
  assert.equal(dry.stdout.match(/would upload 1 paths/g)?.length, 1, dry.stdout);
  assert.ok(!/would upload/.test(dry.stderr), `counted twice: ${dry.stderr}`);
});

test('--upload-path with a bad path and --prune: the usage error, and no prune ran', async () => {
  const cache = await makePublicCache('edge-stop');
  const setup = setupService(cache, undefined);
  const c = ['-c', setup.toml];
  const r = await runLoft([...c, '--upload-path', '/nix/store/nothing', '--prune'], setup.env);
  assert.equal(r.code, 2, r.stderr);
  assert.ok(!/prune/i.test(r.stdout), r.stdout);
  const status = await runLoft([...c, '--status', '--log-format', 'json'], setup.env);
  const s = JSON.parse(status.stdout) as { prune?: { lastRun?: string } };
  assert.equal(s.prune?.lastRun ?? null, null, status.stdout);
});

test('--prune over more narinfos than Node allows listeners prints no MaxListenersExceededWarning', async () => {
  const cache = await makePublicCache('edge-listeners');
  const setup = setupService(cache, undefined);
  const mk = (i: number) => `(mk "edge-listeners-${i}" "echo ${i} > $out")`;
  const paths = await nixBuild(`[ ${Array.from({ length: 24 }, (_, i) => mk(i)).join(' ')} ]`);
  const c = ['-c', setup.toml];
  const push = await runLoft([...c, ...paths.flatMap((p) => ['--upload-path', p])], setup.env);
  assert.equal(push.code, 0, push.stderr);
  // 24 narinfos read 16 at a time under the one signal that SIGINT drains.
  const r = await runLoft([...c, '--prune'], setup.env);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!/MaxListenersExceededWarning|Warning:/.test(r.stderr), r.stderr);
});

test("the service's start line says whether uploads are signed", async () => {
  const cache = await makePublicCache('edge-ready');
  const store = await startChrootStore();
  try {
    const setup = setupService(cache, store, { scan_on_startup: 'false' });
    const svc = new ServiceProcess(setup);
    try {
      const ready = await svc.waitEvent('ready');
      assert.equal(ready.signed, true);
      assert.match(ready.msg, /uploads signed$/);
    } finally {
      assert.equal(await svc.stop(), 0);
    }
  } finally {
    await store.stop();
  }
});
