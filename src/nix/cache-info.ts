/**
 * `nix-cache-info`, a binary cache's metadata file. Nix reads it as `Name: value` lines,
 * value trimmed, lines without a colon and unknown names ignored; only these three matter.
 */
export interface CacheInfo {
  storeDir?: string;
  wantMassQuery?: boolean;
  priority?: number;
}

/** What Nix's own binary cache writer puts there (priority 40, as cache.nixos.org has). */
export function formatCacheInfo(storeDir: string): string {
  return `StoreDir: ${storeDir}\nWantMassQuery: 1\nPriority: 40\n`;
}

export function parseCacheInfo(text: string): CacheInfo {
  const info: CacheInfo = {};
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    if (name === 'StoreDir') info.storeDir = value;
    else if (name === 'WantMassQuery') info.wantMassQuery = value === '1';
    else if (name === 'Priority' && /^\d+$/.test(value)) info.priority = Number(value);
  }
  return info;
}
