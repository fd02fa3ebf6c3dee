import { Errors } from '../errors.ts';
import { otplenFrom } from './seed.ts';
import { registerTokenType } from './registry.ts';
import type { ParamReader, TokenType } from './types.ts';

/** One mailbox address (`local@domain`), without display name, spaces or line breaks. */
export function checkEmailAddress(address: string, param = 'email_address'): string {
  const a = address.trim();
  if (a.length > 254 || !/^[^\s@<>(),;:"\\]+@[^\s@<>(),;:"\\]+\.[^\s@<>(),;:"\\]+$/.test(a)) throw Errors.invalidParameter({ name: param, why: 'not an e-mail address' });
  return a;
}

/**
 * E-mail token, LinOTP type `email`. Challenge-only: a PIN-only request (per
 * otppin) mails a one-time code to `email_address`; the code is random per
 * challenge (see validation/oob/flow.ts), so the token has no seed.
 */
export const emailToken: TokenType = {
  type: 'email',
  prefix: 'LSEM',
  mode: 'challenge',
  hasOtp: true,
  init(params: ParamReader, defaults) {
    const address = params.get('email_address');
    if (address === undefined || address.trim() === '') throw Errors.missingParameter({ name: 'email_address' });
    return { secret: Buffer.alloc(0), otplen: Math.max(6, otplenFrom(params, defaults)), hashlib: 'sha1', info: { email_address: checkEmailAddress(address) } };
  },
  verify: () => null,
};
registerTokenType(emailToken);
