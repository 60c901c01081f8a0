/**
 * Multipart part sizes, pure. S3 allows at most 10,000 parts of 5 MiB to 5 GiB (the last
 * may be smaller), and a NAR's compressed size is unknown until it has been streamed. So
 * part sizes grow with the part number, and a 500 GB upload still fits:
 *
 * - Without a size hint: 8 MiB for parts 1-1000, doubling every 1000 parts (16 MiB from
 *   part 1001, 32 MiB from 2001, ...). Anything under 7.8 GiB uses 8 MiB parts only; 6000
 *   parts reach 504,000 MiB (528 GB); 10,000 parts reach about 8 TB.
 * - With a size hint h: a flat size of max(8 MiB, h / 9000 rounded up to a MiB) for the
 *   hinted bytes, so a 400 GB upload uses 43 MiB parts rather than growing to 256 MiB (less
 *   memory per part in flight). If the data outgrows the hint, sizes double every 100 parts
 *   beyond it, so 10,000 parts still reach far past 500 GB.
 */

export const MiB = 1024 * 1024;
/** S3's minimum size of every part but the last. */
export const MIN_PART_SIZE = 5 * MiB;
/** S3's maximum part size, and the maximum single PUT. */
export const MAX_PART_SIZE = 5 * 1024 * MiB;
export const MAX_PARTS = 10_000;
export const DEFAULT_PART_SIZE = 8 * MiB;
/** Target part count for a hinted size, leaving 1,000 parts of headroom for a low hint. */
const HINTED_PARTS = 9_000;
const TIER_PARTS = 1_000;
const OVERFLOW_TIER_PARTS = 100;

export interface PartPlan {
  /** Size of the first part (and of every part up to `flatParts`). */
  readonly base: number;
  /** With a hint: how many parts the hinted size needs; 0 without a hint. */
  readonly flatParts: number;
}

export function planParts(opts: { sizeHint?: number; basePartSize?: number } = {}): PartPlan {
  const min = Math.max(MIN_PART_SIZE, opts.basePartSize ?? DEFAULT_PART_SIZE);
  const hint = opts.sizeHint;
  if (hint === undefined || !Number.isFinite(hint) || hint <= 0) return { base: min, flatParts: 0 };
  const perPart = Math.ceil(hint / HINTED_PARTS / MiB) * MiB;
  const base = Math.min(MAX_PART_SIZE, Math.max(min, perPart));
  return { base, flatParts: Math.ceil(hint / base) };
}

/** Size of part `n` (1-based). Nondecreasing in `n`, between 5 MiB and 5 GiB. */
export function partSize(n: number, plan: PartPlan): number {
  let doublings: number;
  if (plan.flatParts === 0) doublings = Math.floor((n - 1) / TIER_PARTS);
  else if (n <= plan.flatParts) doublings = 0;
  else doublings = Math.ceil((n - plan.flatParts) / OVERFLOW_TIER_PARTS);
  // 2^20 x 5 MiB is far past the cap already; stop before the float grows silly.
  return Math.min(MAX_PART_SIZE, plan.base * 2 ** Math.min(doublings, 20));
}

/** The largest object 10,000 parts of this plan can hold. */
export function planCapacity(plan: PartPlan): number {
  let total = 0;
  for (let n = 1; n <= MAX_PARTS; n++) total += partSize(n, plan);
  return total;
}
