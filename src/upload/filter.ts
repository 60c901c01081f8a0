/**
 * The include/exclude filter (`include_patterns`, `exclude_patterns`): which store paths a
 * push may upload, decided by the path's name (`<hash>-<name>` minus the hash and dash).
 * Pure. An excluded path is treated like one left to an upstream cache: never uploaded,
 * while the paths that reference it are still published (the plan counts it as satisfied).
 *
 * Patterns are JavaScript regular expressions searched anywhere in the name (`RegExp.test`);
 * anchor them with `^...$` to match the whole name. A path is uploaded when it matches at
 * least one include pattern (or there are none) and no exclude pattern.
 */
import { LoftError } from '../util/errors.js';
import { HASH_PART_LENGTH } from '../nix/store-path.js';

export interface FilterPatterns {
  include: readonly string[];
  exclude: readonly string[];
}

/** Decides per store path; `undefined` stands for "no filter" wherever one is optional. */
export interface PathFilter {
  /** True when the path must not be uploaded. */
  excludes(storePath: string): boolean;
}

/** `/nix/store/<hash>-hello-2.12` -> `hello-2.12` (no validation: the daemon's paths). */
export function storePathName(storePath: string): string {
  const base = storePath.slice(storePath.lastIndexOf('/') + 1);
  return base.slice(HASH_PART_LENGTH + 1);
}

function compile(key: string, patterns: readonly string[]): RegExp[] {
  return patterns.map((p) => {
    try {
      return new RegExp(p);
    } catch (e) {
      // The config loader checks the same patterns first; this guards other callers.
      throw new LoftError(
        'FILTER_BAD_PATTERN',
        'config',
        `${key}: ${JSON.stringify(p)} is not a valid regular expression: ${(e as Error).message}`,
        {
          hint: 'patterns are JavaScript regular expressions matched against the name after the hash',
        },
      );
    }
  });
}

/** The filter for these patterns, or undefined when there are none (everything passes). */
export function pathFilter(patterns: FilterPatterns): PathFilter | undefined {
  if (patterns.include.length === 0 && patterns.exclude.length === 0) return undefined;
  const include = compile('include_patterns', patterns.include);
  const exclude = compile('exclude_patterns', patterns.exclude);
  return {
    excludes(storePath) {
      const name = storePathName(storePath);
      if (include.length > 0 && !include.some((r) => r.test(name))) return true;
      return exclude.some((r) => r.test(name));
    },
  };
}
