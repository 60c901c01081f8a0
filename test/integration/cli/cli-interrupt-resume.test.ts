/**
 * `loft --upload-path` interrupted by Ctrl-C (SIGINT) while a big NAR is being uploaded,
 * through the real binary on the Node that runs the tests:
 * - once: the upload in flight finishes and is published, nothing else starts, exit 130;
 * - twice: the upload in flight is aborted (no multipart upload left, not published), exit 130.
 * Either way the process ends on its own (no abort, no Node warning or stack trace), the
 * bucket stays closure-complete, and a second push completes the closure, which real Nix then
 * substitutes with require-sigs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { nixBuild, nixRequisites } from '../../support/nix.js';
import { checkCacheIntegrity, makePublicCache, substituteFresh } from '../../support/cache.js';
import { listMultipartUploadsRaw } from '../../support/s3.js';
import { hasNarInfo, loftBin, runLoft, setupService, until } from '../service/support.js';

const closure = (async () => {
  const [top] = await nixBuild(`
    let big = mk "int-big" "mkdir $out; head -c 150000000 /dev/urandom > $out/big";
        small = n: mk "int-small-\${n}" "echo \${n} > $out";
    in mk "int-top" "mkdir $out; echo \${big} \${small "a"} \${small "b"} \${small "c"} > $out/refs"`);
  const paths = await nixRequisites([top!]);
  return { top: top!, big: paths.find((p) => p.endsWith('-int-big'))!, paths };
})();

for (const signals of [1, 2]) {
  const what = signals === 1 ? 'once' : 'twice';
  test(`--upload-path interrupted ${what} mid-upload: exit 130, no abort or warning, the bucket closure-complete, a second push completes it`, async () => {
    const { top, big, paths } = await closure;
    const cache = await makePublicCache(`cli-int-${signals}`);
    // One upload at a time, biggest first: the big NAR is the one in flight.
    const setup = setupService(cache, undefined, { upload_threads: '1' });
    const child = spawn(process.execPath, [loftBin, '-c', setup.toml, '--upload-path', top], {
      env: setup.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let stdout = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    try {
      await until(
        async () => (await listMultipartUploadsRaw(cache.client, cache.bucket)).length > 0,
        'the multipart upload of the big NAR to start',
        120_000,
        50,
      );
      child.kill('SIGINT');
      if (signals === 2) {
        await new Promise((r) => setTimeout(r, 100));
        child.kill('SIGINT');
      }
      const [code, signal] = await exited;
      assert.equal(signal, null, `ended by ${signal}: ${stderr}`);
      assert.equal(code, 130, `exit ${code}\n${stderr}`);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    assert.doesNotMatch(stderr, /terminate called|Napi::Error|Warning:|\n\s+at /, stderr);
    assert.deepEqual(await listMultipartUploadsRaw(cache.client, cache.bucket), []);
    assert.deepEqual((await checkCacheIntegrity(cache.client, cache.bucket)).problems, []);
    // Once: the NAR in flight was finished and published. Twice: it was aborted.
    assert.equal(await hasNarInfo(cache.client, cache.bucket, big), signals === 1, stdout);
    assert.equal(await hasNarInfo(cache.client, cache.bucket, top), false, 'not everything ran');

    const again = await runLoft(['-c', setup.toml, '--upload-path', top], setup.env);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual((await checkCacheIntegrity(cache.client, cache.bucket)).problems, []);
    for (const p of paths) assert.ok(await hasNarInfo(cache.client, cache.bucket, p), p);
    await substituteFresh(cache.url, cache.publicKey, [top]);
  });
}
