import { LIMITS } from './limits.ts';
import { Errors } from '../errors.ts';
import { findCounter, totpStep } from '../otp/hotp.ts';
import { oathBasics, otpauthUri } from './seed.ts';
import { registerTokenType } from './registry.ts';
import type { TokenType } from './types.ts';

/**
 * TOTP (RFC 6238). `counter` holds the next step that may be accepted, so a
 * value for an accepted step, or any earlier one, is never accepted again.
 */
export const totpToken: TokenType = {
  type: 'totp',
  prefix: 'TOTP',
  mode: 'authenticate',
  hasOtp: true,
  init(params, defaults, genkey) {
    const { hashlib, otplen, secret } = oathBasics(params, defaults, genkey);
    const step = Number(params.get('timeStep') ?? defaults.totpStepSeconds);
    if (![30, 60].includes(step)) throw Errors.invalidParameter({ name: 'timeStep', why: 'must be 30 or 60' });
    const window = Number(params.get('timeWindow') ?? defaults.totpWindowSteps);
    if (!Number.isInteger(window) || window < 0 || window > LIMITS.maxTotpWindowSteps) {
      throw Errors.invalidParameter({ name: 'timeWindow', why: `must be 0..${LIMITS.maxTotpWindowSteps} steps` });
    }
    return {
      secret, otplen, hashlib,
      info: { hashlib, timeStep: String(step), timeWindow: String(window), timeShift: '0' },
      enrollmentUrl: (serial, label) => otpauthUri('totp', label || serial, secret, { digits: otplen, hashlib, period: step }),
    };
  },
  verify(token, secret, otp, nowMs, stopAtMatch) {
    if (!/^\d+$/.test(otp) || otp.length !== token.otplen) return null;
    const period = Number(token.info.timeStep ?? 30);
    const window = Math.min(Number(token.info.timeWindow ?? 1), LIMITS.maxTotpWindowSteps);
    const shift = Number(token.info.timeShift ?? 0);
    const now = totpStep(nowMs, period, shift);
    // the steps now ± window, none before the stored counter (those were used or skipped)
    const from = Math.max(now - window, token.counter);
    const found = findCounter(secret, otp, from, now + window + 1 - from, token.otplen, token.hashlib, stopAtMatch);
    return found < 0 ? null : { nextCounter: found + 1 };
  },
};
registerTokenType(totpToken);
