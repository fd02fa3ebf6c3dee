import { createHmac, timingSafeEqual } from 'node:crypto';

export type HashName = 'sha1' | 'sha256' | 'sha512';
export const HASHES: readonly HashName[] = ['sha1', 'sha256', 'sha512'];

/** RFC 4226 HOTP value for `counter`, `digits` long, zero padded. Pure. */
export function hotp(key: Uint8Array, counter: number, digits = 6, hash: HashName = 'sha1'): string {
  const message = Buffer.alloc(8);
  message.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac(hash, key).update(message).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const binary =
    ((mac[offset] & 0x7f) << 24) | (mac[offset + 1] << 16) | (mac[offset + 2] << 8) | mac[offset + 3];
  return String(binary % 10 ** digits).padStart(digits, '0');
}

/** RFC 6238 time step of `nowMs` for a step of `periodSeconds`. */
export function totpStep(nowMs: number, periodSeconds = 30, shiftSeconds = 0): number {
  return Math.floor((nowMs / 1000 + shiftSeconds) / periodSeconds);
}

/** Constant-time string comparison (lengths are not secret). */
export function equalOtp(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Looks for `otp` among counters `[from, from + window)`; returns the matching
 * counter or -1. Every candidate is computed so that the work does not depend
 * on where (or whether) the value matches, unless `stopAtMatch`: then the search
 * ends at the first match (for a caller to whom a match is no secret any more).
 * At most `window` HMACs.
 */
export function findCounter(
  key: Uint8Array, otp: string, from: number, window: number, digits: number, hash: HashName, stopAtMatch = false,
): number {
  let found = -1;
  for (let c = from; c < from + window; c++) {
    if (equalOtp(hotp(key, c, digits, hash), otp) && found === -1) {
      found = c;
      if (stopAtMatch) break;
    }
  }
  return found;
}
