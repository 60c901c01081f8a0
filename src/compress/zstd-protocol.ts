/**
 * Messages between the main thread and a zstd worker thread. A data message's input
 * buffer is transferred, not copied, and comes back in the reply for reuse; every data
 * message gets exactly one reply, which is what the main side counts as credit.
 */
import type { WireDigests } from './digests.js';
import type { StopThread } from './thread-pool.js';

/** Compression parameters, sent with a session's first data message. */
export interface ZstdSessionParams {
  level: number;
  /** Hash input and output (sha256) here, and send the digests with the final reply. */
  digests?: boolean;
}

export type ToWorker =
  | {
      t: 'data';
      id: number;
      /** Present on the first message of a session. */
      open?: ZstdSessionParams;
      /** Input bytes (a view from offset 0 of a batch buffer); absent when only ending. */
      chunk?: Uint8Array;
      /** Finish the frame after this chunk and free the session. */
      end: boolean;
    }
  /** The stream was destroyed: drop the session, whatever state it is in. */
  | { t: 'close'; id: number }
  | StopThread;

export type FromWorker =
  | {
      t: 'out';
      id: number;
      /** Compressed bytes produced while handling one data message (maybe none). */
      out: Uint8Array[];
      /** The frame is complete and the session is gone. */
      ended: boolean;
      /** The message's input buffer, handed back for reuse. */
      input?: Uint8Array;
      /** With `ended`, when the session was opened with `digests`. */
      digests?: WireDigests;
    }
  | { t: 'error'; id: number; message: string };
