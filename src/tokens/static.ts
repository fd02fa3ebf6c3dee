import { timingSafeEqual } from 'node:crypto';
import { Errors } from '../errors.ts';
import { registerTokenType } from './registry.ts';
import type { TokenType } from './types.ts';

/** `spass`: the PIN alone authenticates (no OTP part). */
export const spassToken: TokenType = {
  type: 'spass',
  prefix: 'LSSP',
  mode: 'authenticate',
  hasOtp: false,
  init() {
    return { secret: Buffer.alloc(0), otplen: 0, hashlib: 'sha1', info: {} };
  },
  verify(token) {
    return { nextCounter: token.counter };
  },
};

/** `pw`: a static password (given as `otpkey`) after the PIN; stored sealed, never shown again. */
export const pwToken: TokenType = {
  type: 'pw',
  prefix: 'LSPW',
  mode: 'authenticate',
  hasOtp: true,
  init(params) {
    const pw = params.get('otpkey');
    if (pw === undefined || pw === '') throw Errors.missingParameter({ name: 'otpkey' });
    if (pw.length > 256) throw Errors.invalidParameter({ name: 'otpkey', why: 'longer than 256 characters' });
    return { secret: Buffer.from(pw, 'utf8'), otplen: pw.length, hashlib: 'sha1', info: {} };
  },
  verify(token, secret, otp) {
    const given = Buffer.from(otp, 'utf8');
    return given.length === secret.length && timingSafeEqual(given, secret) ? { nextCounter: token.counter } : null;
  },
};
registerTokenType(spassToken);
registerTokenType(pwToken);
