import { LoftError } from '../util/errors.js';

/** The configured compression method is not one Loft knows. */
export class UnknownCompressionError extends LoftError {
  constructor(readonly value: string) {
    super('COMPRESSION_UNKNOWN', 'config', `unknown compression method ${JSON.stringify(value)}`, {
      hint: 'use one of "zstd" (the default), "xz" or "none"',
    });
  }
}

/** A compression level outside what the method accepts (or any level for "none"). */
export class InvalidCompressionLevelError extends LoftError {
  constructor(
    readonly method: string,
    readonly value: unknown,
    expected: string,
  ) {
    super(
      'COMPRESSION_LEVEL_INVALID',
      'config',
      `invalid ${method} compression level ${describeValue(value)}: expected ${expected}`,
      { hint: `set the ${method} level to ${expected}, or leave it unset for the default` },
    );
  }
}

/** A compressor that runs an external program could not find it. */
export class CompressionToolMissingError extends LoftError {
  constructor(
    readonly tool: string,
    readonly method: string,
    cause?: unknown,
  ) {
    super(
      'COMPRESSION_TOOL_MISSING',
      'environment',
      `${method} compression needs the \`${tool}\` program, which is not on PATH`,
      {
        hint:
          `install it (Debian: apt-get install xz-utils; NixOS: it is on the service's PATH) ` +
          `or choose compression = "zstd"`,
        cause,
      },
    );
  }
}

/**
 * The compressor tool died of SIGINT, which Loft never sends it: a terminal's Ctrl-C to
 * Loft's process group landed in the instant between the tool's fork and its leaving the
 * group (the signal stays pending through setsid). Compressing the path again is safe, even
 * while a first Ctrl-C lets the uploads in flight finish.
 */
export class CompressionInterruptedError extends LoftError {
  constructor(
    readonly method: string,
    detail: string,
  ) {
    super(
      'COMPRESSION_INTERRUPTED',
      'work',
      `${method} compression was cut off as it started: ${detail}`,
    );
  }
}

/** The compressor itself failed: a tool exited with an error, or a worker died. */
export class CompressionFailedError extends LoftError {
  constructor(
    readonly method: string,
    detail: string,
    cause?: unknown,
  ) {
    super('COMPRESSION_FAILED', 'work', `${method} compression failed: ${detail}`, {
      // No "will be retried": true of the service's queue, not of a one-shot push.
      hint: 'if it keeps failing, report it with the --debug log',
      cause,
    });
  }
}

function describeValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) {
    return String(v);
  }
  return `of type ${typeof v}`;
}

/**
 * The compressor's input was not the bytes the caller said it would be (sha256 or size):
 * the stream errors instead of ending, so nothing made from those bytes is published.
 */
export class CompressionInputMismatchError extends LoftError {
  constructor(
    readonly expected: { sha256: Buffer; size: number },
    readonly actual: { sha256: Buffer | undefined; size: number },
  ) {
    super(
      'COMPRESSION_INPUT_MISMATCH',
      'work',
      actual.sha256 === undefined
        ? `compressor input grew past the expected ${expected.size} bytes`
        : `compressor input has sha256 ${actual.sha256.toString('hex')} (${actual.size} bytes), expected ${expected.sha256.toString('hex')} (${expected.size} bytes)`,
    );
  }
}
