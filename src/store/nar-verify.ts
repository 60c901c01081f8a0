/**
 * Checks a NAR stream against the narHash and narSize the store registered. Bytes pass
 * through as they come; the stream errors instead of ending when the total differs, and
 * errors as soon as it grows past narSize. A consumer that publishes only on 'end' can
 * therefore never publish a corrupt NAR.
 */
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { Hash } from '../nix/hash.js';
import { NarMismatchError } from './errors.js';

export interface NarExpectation {
  narHash: string;
  narSize: number;
}

export function verifyNar(path: string, expected: NarExpectation): Transform {
  const want = Hash.parse(expected.narHash);
  const hasher = createHash(want.algo);
  let size = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      size += chunk.length;
      if (size > expected.narSize) {
        cb(
          new NarMismatchError(path, {
            expectedHash: expected.narHash,
            expectedSize: expected.narSize,
            actualHash: undefined,
            actualSize: size,
            against: 'registered',
          }),
        );
        return;
      }
      hasher.update(chunk);
      cb(null, chunk);
    },
    flush(cb) {
      const got = new Hash(want.algo, hasher.digest());
      if (size !== expected.narSize || !got.equals(want)) {
        cb(
          new NarMismatchError(path, {
            expectedHash: expected.narHash,
            expectedSize: expected.narSize,
            actualHash: got.toNix32String(),
            actualSize: size,
            against: 'registered',
          }),
        );
        return;
      }
      cb();
    },
  });
}
