/**
 * Run by store-unprivileged.test.ts as another user (runuser): opens a LocalStore with the
 * transport given, computes a closure and hashes a NAR, and prints the outcome as JSON on
 * stdout (errors too, as {error: {code, message, hint}}).
 *
 *   node unprivileged-child.js <transport> <store path>
 */
import { createHash } from 'node:crypto';
import { userInfo } from 'node:os';
import { LocalStore } from '../../../src/store/local-store.js';

const [transport, path] = process.argv.slice(2) as ['auto' | 'socket' | 'stdio', string];
try {
  const store = await LocalStore.open({ transport });
  try {
    const closure = (await store.closure([path])).map((i) => i.path);
    const hash = createHash('sha256');
    for await (const c of store.narStream(path)) hash.update(c as Buffer);
    const info = await store.pathInfo(path);
    process.stdout.write(
      JSON.stringify({
        user: userInfo().username,
        endpoint: store.endpoint,
        closure,
        narSha256: hash.digest('hex'),
        narHash: info.narHash,
      }),
    );
  } finally {
    await store.close();
  }
} catch (e) {
  const err = e as { code?: string; message: string; hint?: string };
  process.stdout.write(
    JSON.stringify({
      user: userInfo().username,
      error: { code: err.code, message: err.message, hint: err.hint },
    }),
  );
}
