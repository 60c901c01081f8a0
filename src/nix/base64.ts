/** Standard padded base64, as Nix writes it in hashes, keys and signatures. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * The bytes of `s`, or undefined when it is not canonical base64. Node's decoder skips
 * what it does not understand; the round trip also rejects non-zero unused bits in the
 * last character, so one value has one spelling.
 */
export function decodeBase64Strict(s: string): Buffer | undefined {
  if (!BASE64.test(s)) return undefined;
  const b = Buffer.from(s, 'base64');
  return b.toString('base64') === s ? b : undefined;
}
