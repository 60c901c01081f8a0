/**
 * Buffers whose memory may be given back the moment their bytes have been copied, instead
 * of when the garbage collector next runs. The packer threads' output arrives in the main
 * thread as transferred ArrayBuffers, one per chunk, that nothing else shares; a big NAR's
 * chunks are copied into part buffers and then are garbage. V8 collects such external
 * memory only after tens of MiB of it have piled up, which was most of a push's peak RSS
 * beyond the part buffers themselves. Detaching an ArrayBuffer (transfer(0)) frees it now.
 *
 * Only buffers marked by their owner are ever freed: a Buffer from Node's shared pool, or
 * one still being written to a socket, must never be.
 */

const releasable = new WeakSet<ArrayBufferLike>();

/** `b` alone views its ArrayBuffer, which no native call holds: it may be released. */
export function markReleasable(b: Uint8Array): void {
  releasable.add(b.buffer);
}

/**
 * Free the memory under `b` now if it was marked (every view of it then has length 0);
 * otherwise do nothing. Call only once its bytes are no longer needed anywhere.
 */
export function releaseNow(b: Uint8Array): void {
  const ab = b.buffer;
  if (!releasable.delete(ab)) return;
  (ab as ArrayBuffer & { transfer(length: number): ArrayBuffer }).transfer(0);
}
