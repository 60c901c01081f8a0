/**
 * sha256 and size of what goes into and comes out of a compressor, so a NAR is hashed
 * once on its way through (zstd does it in its worker thread, off the main thread), and
 * an input expectation that makes the stream error instead of ending when the input is
 * not what the caller registered.
 */
import { createHash, type Hash as Hasher } from 'node:crypto';
import { CompressionInputMismatchError } from './errors.js';

export interface CompressionDigests {
  inputSha256: Buffer;
  inputSize: number;
  outputSha256: Buffer;
  outputSize: number;
}

/** The same, as it crosses postMessage (Buffers arrive as Uint8Arrays). */
export interface WireDigests {
  inputSha256: Uint8Array;
  inputSize: number;
  outputSha256: Uint8Array;
  outputSize: number;
}

export function digestsFromWire(d: WireDigests): CompressionDigests {
  return {
    inputSha256: Buffer.from(d.inputSha256),
    inputSize: d.inputSize,
    outputSha256: Buffer.from(d.outputSha256),
    outputSize: d.outputSize,
  };
}

export interface InputExpectation {
  sha256: Buffer;
  size: number;
}

/** The error for input that differs from the expectation, or undefined when it matches. */
export function inputMismatch(
  d: Pick<CompressionDigests, 'inputSha256' | 'inputSize'>,
  exp: InputExpectation | undefined,
): CompressionInputMismatchError | undefined {
  if (exp === undefined) return undefined;
  if (d.inputSize === exp.size && d.inputSha256.equals(exp.sha256)) return undefined;
  return new CompressionInputMismatchError(exp, { sha256: d.inputSha256, size: d.inputSize });
}

/** Input grew past the expected size: fail now rather than after reading the rest. */
export function oversize(
  bytesIn: number,
  exp: InputExpectation | undefined,
): CompressionInputMismatchError | undefined {
  if (exp === undefined || bytesIn <= exp.size) return undefined;
  return new CompressionInputMismatchError(exp, { sha256: undefined, size: bytesIn });
}

/** sha256 and size of input and output, wherever the bytes pass (a worker or the main thread). */
export class DigestPair {
  private readonly input: Hasher = createHash('sha256');
  private readonly output: Hasher | undefined;
  private inputSize = 0;
  private outputSize = 0;

  /** `sameBytes`: output is the input (no compression), so hash once. */
  constructor(private readonly sameBytes = false) {
    this.output = sameBytes ? undefined : createHash('sha256');
  }

  in(chunk: Uint8Array): void {
    this.input.update(chunk);
    this.inputSize += chunk.length;
  }

  /** Input bytes so far. */
  get bytesIn(): number {
    return this.inputSize;
  }

  out(chunk: Uint8Array): void {
    this.output?.update(chunk);
    this.outputSize += chunk.length;
  }

  finish(): CompressionDigests {
    const inputSha256 = this.input.digest();
    return {
      inputSha256,
      inputSize: this.inputSize,
      outputSha256: this.output?.digest() ?? inputSha256,
      outputSize: this.sameBytes ? this.inputSize : this.outputSize,
    };
  }
}
