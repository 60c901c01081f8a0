import { readFileSync } from 'node:fs';

/** The version from package.json (dist/src/cli/ -> repository root, or the npm package root). */
export function loftVersion(): string {
  const pkg = JSON.parse(
    readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'),
  ) as { version: string };
  return pkg.version;
}

/** What `loft --version` prints: Loft's version and the Node.js it runs on (bug reports need both). */
export function versionLine(): string {
  return `loft ${loftVersion()} (node ${process.versions.node})`;
}
