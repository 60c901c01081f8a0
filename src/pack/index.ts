/** NAR packing off the main thread: encode from disk, verify, compress, in worker threads. */
export {
  NarPacker,
  PackStream,
  defaultPackerThreads,
  type PackRequest,
  type NarPackerOptions,
} from './pack-pool.js';
export { PackSourceError, PackFailedError } from './errors.js';
