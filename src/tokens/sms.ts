import { Errors } from '../errors.ts';
import { impossibleInternationalNumber, requestPhoneProblem } from '../util/phone.ts';
import { otplenFrom } from './seed.ts';
import { registerTokenType } from './registry.ts';
import type { ParamReader, TokenType } from './types.ts';

/**
 * A phone number as an admin or a directory gives it: digits with the usual separators, no
 * control characters. An international number (`+…`, `00…`) must also have a length its
 * country's numbering plan allows (libphonenumber's "possible"): such a number can never
 * receive a code, whatever the delivery settings. Whether it is in an assigned range, and
 * national numbers (which need the default country), are judged at delivery.
 */
export function checkPhone(phone: string, param = 'phone'): string {
  const unencodedPlus = requestPhoneProblem(phone);
  if (unencodedPlus) throw Errors.invalidParameter({ name: param, why: unencodedPlus });
  const p = phone.trim();
  if (!/^\+?[0-9][0-9 ()./-]{2,30}$/.test(p)) throw Errors.invalidParameter({ name: param, why: 'not a phone number (digits, optional leading +, spaces, ( ) . / -)' });
  const impossible = impossibleInternationalNumber(p);
  if (impossible) throw Errors.invalidParameter({ name: param, why: impossible });
  return p;
}

/**
 * SMS token, LinOTP type `sms`. Challenge-only: a PIN-only request (per otppin)
 * sends a one-time code to the token's `phone`; the code is random per challenge
 * (see validation/oob/flow.ts), so the token has no seed.
 */
export const smsToken: TokenType = {
  type: 'sms',
  prefix: 'LSSM',
  mode: 'challenge',
  hasOtp: true,
  init(params: ParamReader, defaults) {
    const phone = params.get('phone');
    if (phone === undefined || phone.trim() === '') throw Errors.missingParameter({ name: 'phone' });
    return { secret: Buffer.alloc(0), otplen: Math.max(6, otplenFrom(params, defaults)), hashlib: 'sha1', info: { phone: checkPhone(phone) } };
  },
  // Codes belong to challenges and are checked by the challenge handler, never here.
  verify: () => null,
};
registerTokenType(smsToken);
