/**
 * Messages between the main thread and a NAR packer thread. Output chunks are transferred,
 * not copied. Flow control is by credit: the packer sends an 'out' message only while it
 * holds credit, and the main side grants one back for each it has taken up, so a slow
 * upload stops the packer instead of growing memory.
 */
import type { WireDigests } from '../compress/digests.js';
import type { StopThread } from '../compress/thread-pool.js';
import type { ZstdFrameOptions } from '../compress/zstd-frame.js';

export type ToPacker =
  | {
      t: 'job';
      id: number;
      /** The store path's directory on disk (the real store dir, for chroot stores). */
      path: string;
      /** zstd settings, or undefined to store the NAR as it is ("none"). */
      zstd: ZstdFrameOptions | undefined;
      /** The registered narHash (sha256 digest) and narSize the NAR must have. */
      expect: { sha256: Uint8Array; size: number };
      /** Also build the `.ls` listing. */
      listing: boolean;
      /** 'out' messages the packer may send before it waits for more credit. */
      credit: number;
    }
  | { t: 'credit'; id: number; n: number }
  | { t: 'cancel'; id: number }
  /** Output buffers of FRAME_OUT_BYTES whose bytes have been sent, to write into again. */
  | { t: 'spare'; buffers: ArrayBuffer[] }
  | StopThread;

export type FromPacker =
  | { t: 'out'; id: number; chunks: Uint8Array[] }
  | {
      t: 'done';
      id: number;
      /** The last output, sent with the digests (small NARs need only this message). */
      chunks: Uint8Array[];
      digests: WireDigests;
      listing?: Uint8Array;
    }
  | {
      t: 'mismatch';
      id: number;
      expected: { sha256: Uint8Array; size: number };
      actual: { sha256: Uint8Array | undefined; size: number };
    }
  | { t: 'error'; id: number; message: string; code?: string; path?: string };
