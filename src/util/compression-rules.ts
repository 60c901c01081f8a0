/**
 * The compression methods Loft writes and the levels each accepts, shared by the
 * configuration (src/config, which validates loft.toml) and the compressors (src/compress,
 * which validate what they are given). Pure data.
 */
export const COMPRESSIONS = ['zstd', 'xz', 'none'] as const;
export type CompressionName = (typeof COMPRESSIONS)[number];

export interface LevelRange {
  min: number;
  max: number;
  default: number;
}

/** zstd above 19 needs `--ultra` windows (gigabytes of memory); "none" has no level. */
export const COMPRESSION_LEVELS: Record<CompressionName, LevelRange | undefined> = {
  zstd: { min: 1, max: 19, default: 3 },
  xz: { min: 0, max: 9, default: 6 },
  none: undefined,
};
