import type { Token, TokenType } from '../tokens/types.ts';

/** Policy `authentication/otppin`: 0 token PIN, 1 user-store password, 2 only the OTP, 3 any PIN. */
export type OtpPinMode = 0 | 1 | 2 | 3;

/** A pass cut into its first factor and its OTP. */
export interface SplitPass {
  pin: string;
  otp: string;
}

/**
 * The OTP length a pass is cut at: the token's `otplen`; for challenge-only types
 * (sms, email) the length of the code they send (`otplen` in the token info, when set).
 */
export function otpLength(token: Token, type: TokenType): number {
  return type.mode === 'challenge' ? Number(token.info.otplen ?? token.otplen) : token.otplen;
}

/**
 * The split step (spec 2.4): PIN first (`PrependPin`, the default) or OTP first, cut
 * `otpLength` characters from the end (or the start). A type without an OTP (spass) is all
 * PIN; otppin=2 makes the whole pass the OTP; a pass shorter than the OTP is all PIN.
 */
export function splitPass(pass: string, token: Token, type: TokenType, mode: OtpPinMode, prependPin: boolean): SplitPass {
  if (!type.hasOtp && type.mode !== 'challenge') return { pin: pass, otp: '' };
  const len = otpLength(token, type);
  if (mode === 2) return { pin: '', otp: pass };
  if (pass.length < len) return { pin: pass, otp: '' };
  return prependPin
    ? { pin: pass.slice(0, pass.length - len), otp: pass.slice(pass.length - len) }
    : { pin: pass.slice(len), otp: pass.slice(0, len) };
}
