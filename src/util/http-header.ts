/**
 * Which extra HTTP headers Loft may send with S3 requests: one rule set for the config
 * checks (start-up, every problem listed) and the S3 store's own guard (library callers).
 * Problems name the header, never the value: values are secrets.
 */
import { hasControlChar } from './text.js';

/** RFC 9110 section 5.6.2 `token`. */
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Names the HTTP client or the SigV4 signer owns. Extra headers are added after signing, so
 * replacing a signed header (Host, X-Amz-*, Content-MD5, conditional headers) breaks the
 * signature, and framing/hop-by-hop headers break the HTTP exchange itself.
 */
const FRAMING = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'upgrade',
  'expect',
  'accept-encoding',
]);
const SIGNED = new Set([
  'authorization',
  'content-type',
  'content-md5',
  'content-encoding',
  'date',
  'range',
  'if-match',
  'if-none-match',
  'if-modified-since',
  'if-unmodified-since',
]);
const SIGNED_PREFIXES = ['x-amz-', 'amz-sdk-'];

/** Every name (and prefix) refused as an extra header, for the reference. */
export const RESERVED_HEADER_NAMES: readonly string[] = [...FRAMING, ...SIGNED].sort();
export const RESERVED_HEADER_PREFIXES: readonly string[] = SIGNED_PREFIXES;

export function checkHeaderName(name: string): string | undefined {
  if (name === '') return 'the header name is empty';
  if (!TOKEN_RE.test(name)) {
    return `${JSON.stringify(name)} is not a valid HTTP header name (letters, digits and !#$%&'*+-.^_\`|~ only)`;
  }
  const lower = name.toLowerCase();
  if (FRAMING.has(lower)) {
    return `${name} cannot be an extra header: the HTTP client sets it for the connection and message framing`;
  }
  if (SIGNED.has(lower) || SIGNED_PREFIXES.some((p) => lower.startsWith(p))) {
    return `${name} cannot be an extra header: the S3 client sets and signs it (SigV4), and replacing it would break the signature`;
  }
  return undefined;
}

/** Checks a value without ever including it in the problem. */
export function checkHeaderValue(value: string): string | undefined {
  if (value.trim() === '') {
    return 'the value is empty (a secret file or variable that was not filled in?)';
  }
  if (/[\r\n]/.test(value)) {
    return 'the value contains a line break (CR or LF; a trailing newline from a secret file?)';
  }
  if (value.includes('\0')) return 'the value contains a NUL byte';
  // RFC 9110 field-value: visible characters, spaces and tabs; other controls are rejected
  // by Node's HTTP client at request time, so catch them at start-up instead.
  if (hasControlChar(value, true)) return 'the value contains a control character';
  return undefined;
}
