/**
 * Permission checks as an unprivileged user. Root reads and writes anywhere, so a test of
 * a permission-denied branch that runs as root would prove nothing; there the code under
 * test runs in a child process as `nobody` instead, on files handed to that user.
 */
import { execFile } from 'node:child_process';
import { chownSync } from 'node:fs';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export const NOBODY = { uid: 65534, gid: 65534 };

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** Hand `paths` to the unprivileged user (when root; otherwise they are ours already). */
export function giveToUnprivileged(...paths: string[]): void {
  if (isRoot()) for (const p of paths) chownSync(p, NOBODY.uid, NOBODY.gid);
}

/**
 * Run `body` (the inside of an async ES module function) as `nobody`, with `modules`
 * imported by name (file URLs); it returns a JSON-able value, which comes back here.
 */
export async function runUnprivileged<T>(
  modules: Record<string, string>,
  body: string,
): Promise<T> {
  const imports = Object.entries(modules)
    .map(([name, url]) => `const ${name} = await import(${JSON.stringify(url)});`)
    .join('\n');
  const code = `${imports}\nconst out = await (async () => {\n${body}\n})();\nprocess.stdout.write(JSON.stringify(out ?? null));`;
  const { stdout } = await exec(process.execPath, ['--input-type=module', '-e', code], {
    uid: NOBODY.uid,
    gid: NOBODY.gid,
    cwd: '/',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  return JSON.parse(stdout) as T;
}
