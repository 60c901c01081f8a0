/** Shared bits for the Nix format integration tests. */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dumpPath } from '../../../src/store/nar-fs.js';

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `loft-${prefix}-`));
}

/** Our NAR of `path`, in memory (for small trees only). */
export async function ourNar(path: string | Buffer): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of dumpPath(path)) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

/** sha256 and size of a stream of chunks, without keeping them; also the largest chunk. */
export async function hashChunks(
  chunks: AsyncIterable<Uint8Array>,
): Promise<{ sha256: Buffer; size: number; maxChunk: number }> {
  const h = createHash('sha256');
  let size = 0;
  let maxChunk = 0;
  for await (const c of chunks) {
    h.update(c);
    size += c.length;
    maxChunk = Math.max(maxChunk, c.length);
  }
  return { sha256: h.digest(), size, maxChunk };
}

/** sha256 and size of `nix-store --dump PATH`, streamed. */
export function hashNixDump(path: string): Promise<{ sha256: Buffer; size: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn('nix-store', ['--dump', path], { stdio: ['ignore', 'pipe', 'pipe'] });
    const h = createHash('sha256');
    let size = 0;
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      h.update(c);
      size += c.length;
    });
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve({ sha256: h.digest(), size })
        : reject(new Error(`nix-store --dump ${path}: ${err}`)),
    );
  });
}

/** Run a command; resolve with its exit code, stdout and stderr (never rejects on status). */
export function runStatus(
  cmd: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const full = cmd === 'nix' ? ['--extra-experimental-features', 'nix-command', ...args] : args;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, full, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
