/**
 * Buffers whose memory may be given back the moment their bytes have been copied, instead
 * of when the garbage collector next runs. The packer threads' output arrives in the main
 * thread as transferred ArrayBuffers, one per chunk, that nothing else shares; a big NAR's
 * chunks are copied into part buffers and then are garbage. V8 collects such external
 * memory only after tens of MiB of it have piled up, which was most of a push's peak RSS
 * beyond the part buffers themselves. Detaching an ArrayBuffer (transfer(0)) frees it now;
 * an owner may instead take it back to write into again (a packer thread's output buffers).
 *
 * Only buffers marked by their owner are ever freed or taken back: a Buffer from Node's
 * shared pool, or one still being written to a socket, must never be.
 */

/** Takes a released ArrayBuffer (and with it the memory under every view of it). */
export type TakeBack = (ab: ArrayBuffer) => void;

const releasable = new WeakMap<ArrayBufferLike, TakeBack | null>();

/**
 * `b` alone views its ArrayBuffer, which no native call holds: it may be released, to
 * `takeBack` if given (which must transfer or drop it), else freed.
 */
export function markReleasable(b: Uint8Array, takeBack?: TakeBack): void {
  releasable.set(b.buffer, takeBack ?? null);
}

/**
 * Free the memory under `b` now, or hand it to its owner, if it was marked (this thread's
 * views of it are then of no use); otherwise do nothing. Call only once its bytes are no
 * longer needed anywhere.
 */
export function releaseNow(b: Uint8Array): void {
  const ab = b.buffer;
  const takeBack = releasable.get(ab);
  if (takeBack === undefined) return;
  releasable.delete(ab);
  if (takeBack) takeBack(ab as ArrayBuffer);
  else freeNow(ab as ArrayBuffer);
}

/** Detach `ab`, which frees its memory now (every view of it then has length 0). */
export function freeNow(ab: ArrayBuffer): void {
  (ab as ArrayBuffer & { transfer(length: number): ArrayBuffer }).transfer(0);
}
