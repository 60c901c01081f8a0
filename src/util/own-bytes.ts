/**
 * `b` with an ArrayBuffer of its own, for a message. postMessage clones a typed array's
 * whole backing buffer, and a small Buffer is a view on Node's shared pool
 * (`Buffer.poolSize`: 8 KiB on Node 22, 64 KiB on Node 24): a 32-byte digest sent as it
 * is costs a copy of the whole pool on both sides.
 */
export function ownBytes(b: Uint8Array): Uint8Array {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : new Uint8Array(b);
}
