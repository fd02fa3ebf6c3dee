import { createDecipheriv, createHash, timingSafeEqual } from 'node:crypto';

/**
 * LinOTP's secrets at rest, read as spec/linotp.md 9.2 describes them, so `otpd import linotp`
 * can bring seeds, configuration secrets and PINs over.
 *
 * - The key file (`encKey`) is consecutive 32-byte keys: slot 0 token seeds and encrypted PINs,
 *   slot 1 encrypted configuration values, slot 2 the value key. The spec gives no file size;
 *   otpd reads the three slots it names (96 bytes) and refuses anything shorter.
 * - A seed is AES-256-CBC (slot 0) of the hex text of the seed bytes, PKCS#7 padded, stored hex
 *   (`LinOtpKeyEnc`) with its 16-byte IV (`LinOtpKeyIV`).
 * - A PIN is SHA-256 over the PIN's UTF-8 bytes followed by the 16-byte IV, hex (`LinOtpPinHash`,
 *   IV in `LinOtpSeed`).
 * - The spec does not say how an encrypted configuration value is laid out; otpd reads it like a
 *   seed under slot 1: `<iv hex>:<ciphertext hex>`, the plaintext being the hex of the UTF-8 value.
 */
const KEY_BYTES = 32;
const SLOTS = 3;

export interface LinotpKeys {
  seed: Buffer;
  config: Buffer;
}

/** The slots of a LinOTP `encKey` file; throws for a file shorter than three keys. */
export function parseLinotpEncKey(data: Buffer): LinotpKeys {
  if (data.length < KEY_BYTES * SLOTS) {
    throw new Error(`LinOTP encKey: expected at least ${KEY_BYTES * SLOTS} bytes (three 32-byte keys), found ${data.length}`);
  }
  return { seed: Buffer.from(data.subarray(0, KEY_BYTES)), config: Buffer.from(data.subarray(KEY_BYTES, 2 * KEY_BYTES)) };
}

const HEX = /^([0-9a-fA-F]{2})+$/;

/** AES-256-CBC with PKCS#7 of a hex ciphertext; the plaintext is hex text, returned decoded. */
function decryptHexPayload(key: Buffer, ivHex: string, dataHex: string, what: string): Buffer {
  if (!HEX.test(ivHex) || ivHex.length !== 32) throw new Error(`${what}: the IV is not 16 bytes of hex`);
  if (!HEX.test(dataHex) || dataHex.length % 32 !== 0) throw new Error(`${what}: the ciphertext is not whole AES blocks of hex`);
  let plain: string;
  try {
    const d = createDecipheriv('aes-256-cbc', key, Buffer.from(ivHex, 'hex'));
    plain = Buffer.concat([d.update(Buffer.from(dataHex, 'hex')), d.final()]).toString('latin1');
  } catch {
    throw new Error(`${what}: does not decrypt with this encKey (wrong key file?)`);
  }
  if (!HEX.test(plain)) throw new Error(`${what}: decrypts to something that is not hex (wrong key file?)`);
  return Buffer.from(plain, 'hex');
}

/** A token seed from `LinOtpKeyEnc` / `LinOtpKeyIV`. */
export function decryptLinotpSeed(keys: LinotpKeys, keyEncHex: string, ivHex: string): Buffer {
  return decryptHexPayload(keys.seed, ivHex.trim(), keyEncHex.trim(), 'seed');
}

/** An encrypted configuration value (`<iv hex>:<ciphertext hex>`, slot 1), as text. */
export function decryptLinotpConfigValue(keys: LinotpKeys, stored: string): string {
  const [iv, data, extra] = stored.trim().split(':');
  if (iv === undefined || data === undefined || extra !== undefined) throw new Error('encrypted config value: expected <iv hex>:<ciphertext hex>');
  return decryptHexPayload(keys.config, iv, data, 'encrypted config value').toString('utf8');
}

/** The marker otpd keeps in `pin_salt` for a PIN hash in LinOTP's format (followed by the IV, hex). */
export const LINOTP_PIN_MARKER = 'linotp-sha256:';

/** Whether LinOTP's stored PIN hash (hex) is this PIN's, in constant time. */
export function linotpPinMatches(pin: string, ivHex: string, hashHex: string): boolean {
  if (!HEX.test(ivHex) || !HEX.test(hashHex) || hashHex.length !== 64) return false;
  const computed = createHash('sha256').update(Buffer.from(pin, 'utf8')).update(Buffer.from(ivHex, 'hex')).digest();
  return timingSafeEqual(computed, Buffer.from(hashHex, 'hex'));
}

/** Whether a LinOTP PIN hash row is in the one format the spec describes (64 hex, IV of 16 bytes hex). */
export function isLinotpPinHash(ivHex: string, hashHex: string): boolean {
  return HEX.test(ivHex) && ivHex.length === 32 && HEX.test(hashHex) && hashHex.length === 64;
}
