/**
 * The policy questions of the validation pipeline, as pure functions of the cached
 * policies (a {@link PolicyPort} reads no database) and the subject.
 */
import { canonicalType, tokenType } from '../tokens/registry.ts';
import type { Token } from '../tokens/types.ts';
import type { PolicyPort, PolicySubject } from './ports.ts';
import type { Reason } from './reasons.ts';
import type { OtpPinMode } from './split.ts';

const OTPPIN: Record<string, OtpPinMode> = { '0': 0, token_pin: 0, '1': 1, password: 1, '2': 2, only_otp: 2, '3': 3, ignore_pin: 3 };

/**
 * The otppin mode for the subject. An unassigned token in several realms takes the
 * strictest of its realms' modes (1, then 0, then 3 and 2), so no realm is weakened.
 */
export function otppinMode(policies: PolicyPort, subject: PolicySubject, realms: string[] = [subject.realm]): OtpPinMode {
  const modes = realms.map((realm) => {
    const v = policies.value('authentication', 'otppin', { ...subject, realm });
    return v === undefined ? 0 : OTPPIN[String(v)] ?? 0;
  });
  for (const m of [1, 0, 3, 2] as const) if (modes.includes(m)) return m;
  return 0;
}

/**
 * authorization `tokentype` (space list, `*` = all) and `serial` (regular expression): a
 * token outside them neither authenticates nor gets a challenge. otpd checks before the OTP,
 * so a refused token's OTP is not used up (LinOTP checks after a success). The refusal, or null.
 */
export function tokenRefusal(policies: PolicyPort, t: Token, subject: PolicySubject): { reason: Reason; detail: string } | null {
  const types = policies.value('authorization', 'tokentype', subject);
  if (typeof types === 'string' && types.trim() !== '') {
    const allowed = types.toLowerCase().split(/[\s,]+/).filter(Boolean).map((x) => (x === '*' ? x : canonicalType(x)));
    if (!allowed.includes('*') && !allowed.includes(t.type)) return { reason: 'tokenTypeNotAuthorized', detail: 'token type not allowed by the authorization policy' };
  }
  const serial = policies.value('authorization', 'serial', subject);
  if (typeof serial === 'string' && serial !== '') {
    const refused = { reason: 'serialNotAuthorized', detail: 'serial not allowed by the authorization policy' } as const;
    let re: RegExp;
    try {
      re = new RegExp(serial);
    } catch {
      return refused;
    }
    if (!re.test(t.serial)) return refused;
  }
  return null;
}

/** A challenge-only type, or the challenge_response policy lists this type (or `*`): PIN only triggers a challenge. */
export function challengeCapable(policies: PolicyPort, token: Token, subject: PolicySubject): boolean {
  const type = tokenType(token.type);
  if (type?.mode === 'challenge') return true;
  const v = policies.value('authentication', 'challenge_response', subject);
  if (typeof v !== 'string') return false;
  const types = v.toLowerCase().split(/[\s,]+/);
  return types.includes('*') || types.includes(token.type);
}
