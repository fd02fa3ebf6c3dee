import { findCounter } from '../otp/hotp.ts';
import { oathBasics, otpauthUri } from './seed.ts';
import { registerTokenType } from './registry.ts';
import type { TokenType } from './types.ts';

/** HOTP (RFC 4226), LinOTP type `hmac`: window [counter, counter + CountWindow). */
export const hmacToken: TokenType = {
  type: 'hmac',
  prefix: 'OATH',
  mode: 'authenticate',
  hasOtp: true,
  init(params, defaults, genkey) {
    const { hashlib, otplen, secret } = oathBasics(params, defaults, genkey);
    return {
      secret, otplen, hashlib, info: { hashlib },
      enrollmentUrl: (serial, label) => otpauthUri('hotp', label || serial, secret, { digits: otplen, hashlib, counter: 0 }),
    };
  },
  verify(token, secret, otp, _nowMs, stopAtMatch) {
    if (!/^\d+$/.test(otp) || otp.length !== token.otplen) return null;
    const c = findCounter(secret, otp, token.counter, token.countWindow, token.otplen, token.hashlib, stopAtMatch);
    return c < 0 ? null : { nextCounter: c + 1 };
  },
};
registerTokenType(hmacToken);
