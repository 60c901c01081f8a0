import { readFileSync } from 'node:fs';

/**
 * The version from Loft's package.json, the nearest one above this module named "loft": the
 * module runs from dist/src/cli/ or from a chunk in dist/bundle/, in the repository or an
 * installed package.
 */
export function loftVersion(): string {
  for (let dir = new URL('./', import.meta.url); ; dir = new URL('../', dir)) {
    const pkg = readPackage(new URL('package.json', dir));
    if (pkg?.name === 'loft' && typeof pkg.version === 'string') return pkg.version;
    if (dir.pathname === '/') throw new Error(`no package.json of loft above ${import.meta.url}`);
  }
}

function readPackage(url: URL): { name?: unknown; version?: unknown } | undefined {
  try {
    return JSON.parse(readFileSync(url, 'utf8')) as { name?: unknown; version?: unknown };
  } catch {
    return undefined;
  }
}

/** What `loft --version` prints: Loft's version and the Node.js it runs on (bug reports need both). */
export function versionLine(): string {
  return `loft ${loftVersion()} (node ${process.versions.node})`;
}
