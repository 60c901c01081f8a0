import type { NarInfo } from '../nix/narinfo.js';
import { signNarInfo, type SecretKey } from '../nix/signing.js';
import { parseStorePath } from '../nix/store-path.js';
import type { PathInfo } from '../store/path-info.js';

/** What the upload of one NAR produced. */
export interface StoredNar {
  /** The object key, which is also the narinfo URL (relative to the cache root). */
  url: string;
  /** The narinfo `Compression:` value. */
  compression: string;
  /** `sha256:<nix32>` of the stored (compressed) bytes. */
  fileHash: string;
  fileSize: number;
}

/**
 * The narinfo for a stored path: the store's own facts (hash, size, references, deriver,
 * content address, existing signatures) plus where the NAR is, signed with our key when
 * we have one. References and Deriver become basenames, as Nix writes them.
 */
export function buildNarInfo(
  info: PathInfo,
  nar: StoredNar,
  storeDir: string,
  key: SecretKey | undefined,
): NarInfo {
  const narInfo: NarInfo = {
    storePath: info.path,
    url: nar.url,
    compression: nar.compression,
    fileHash: nar.fileHash,
    fileSize: nar.fileSize,
    narHash: info.narHash,
    narSize: info.narSize,
    references: info.references.map((r) => parseStorePath(r, storeDir).basename).sort(),
    sigs: [...info.sigs],
  };
  if (info.deriver !== undefined) narInfo.deriver = parseStorePath(info.deriver, storeDir).basename;
  if (info.ca !== undefined) narInfo.ca = info.ca;
  return key ? signNarInfo(narInfo, key, storeDir) : narInfo;
}
