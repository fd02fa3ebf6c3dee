import { Errors } from '../errors.ts';
import type { PolicyPort, PolicySubject } from '../validation/ports.ts';

/** A selfservice action a user may be granted (policy/catalogue.ts, scope selfservice). */
export type SelfServiceAction =
  | 'enrollHMAC' | 'enrollTOTP' | 'enrollSMS' | 'enrollEMAIL'
  | 'assign' | 'disable' | 'enable' | 'delete' | 'unassign' | 'resync' | 'verify' | 'reset'
  | 'setOTPPIN' | 'setDescription' | 'history' | 'getserial';

/** What each action lets the user do, in the refusal's words. */
const DOING: Record<SelfServiceAction, string> = {
  enrollHMAC: 'enroll an HOTP token', enrollTOTP: 'enroll an authenticator app (TOTP)', enrollSMS: 'enroll an SMS token', enrollEMAIL: 'enroll an e-mail token',
  assign: 'assign a token', disable: 'disable tokens', enable: 'enable tokens', delete: 'delete tokens', unassign: 'unassign tokens',
  resync: 'resynchronise tokens', verify: 'test tokens', reset: 'reset the fail counter', setOTPPIN: 'set the token PIN',
  setDescription: 'change the token description', history: 'read the history', getserial: 'look up a serial by OTP',
};

/**
 * The selfservice policy questions. A right exists only where a matching policy grants it
 * (LinOTP: no selfservice policy, no action); the subject is the session's user and the client.
 */
export class SelfServiceRights {
  constructor(private readonly policies: PolicyPort) {}

  allowed(subject: PolicySubject, action: SelfServiceAction): boolean {
    return this.policies.has('selfservice', action, subject);
  }

  /** The actions the user has, for `context`'s `actions` list and the portal's buttons. */
  granted(subject: PolicySubject): SelfServiceAction[] {
    return (Object.keys(DOING) as SelfServiceAction[]).filter((a) => this.allowed(subject, a));
  }

  require(subject: PolicySubject, action: SelfServiceAction): void {
    if (!this.allowed(subject, action)) throw Errors.selfserviceNotAllowed({ what: DOING[action] });
  }

  flag(subject: PolicySubject, action: 'mfa_login' | 'mfa_3_fields' | 'mfa_passOnNoToken'): boolean {
    return this.policies.has('selfservice', action, subject);
  }

  text(subject: PolicySubject, action: 'footer_text' | 'imprint_url' | 'privacy_notice_url'): string | null {
    const v = this.policies.value('selfservice', action, subject);
    return typeof v === 'string' && v !== '' ? v : null;
  }

  /** Throws 2905 when the PIN breaks otp_pin_minlength, otp_pin_maxlength or otp_pin_contents. */
  checkPin(subject: PolicySubject, pin: string): void {
    const why = pinProblem(pin, {
      min: this.policies.value('selfservice', 'otp_pin_minlength', subject),
      max: this.policies.value('selfservice', 'otp_pin_maxlength', subject),
      contents: this.policies.value('selfservice', 'otp_pin_contents', subject),
    });
    if (why) throw Errors.pinRefused({ why });
  }
}

const GROUPS: Record<string, { name: string; test: (ch: string) => boolean }> = {
  c: { name: 'letters', test: (ch) => /[A-Za-z]/.test(ch) },
  n: { name: 'digits', test: (ch) => /[0-9]/.test(ch) },
  s: { name: 'special characters', test: (ch) => /[!-/:-@[-`{-~]/.test(ch) },
  u: { name: 'upper-case letters', test: (ch) => /[A-Z]/.test(ch) },
  o: { name: 'other characters', test: (ch) => !/[A-Za-z0-9!-/:-@[-`{-~]/.test(ch) },
};

/**
 * Why a PIN breaks the selfservice PIN policy, or undefined. `otp_pin_contents` letters name
 * groups (c letters, n digits, s special, u upper case, o others): without a sign the PIN needs
 * one character of every group, with `+` one of any of them, with `-` none of them.
 */
export function pinProblem(pin: string, rules: { min?: unknown; max?: unknown; contents?: unknown }): string | undefined {
  const chars = [...pin];
  if (typeof rules.min === 'number' && chars.length < rules.min) return `at least ${rules.min} characters`;
  if (typeof rules.max === 'number' && rules.max > 0 && chars.length > rules.max) return `at most ${rules.max} characters`;
  if (typeof rules.contents !== 'string' || rules.contents === '') return undefined;
  const sign = rules.contents[0] === '+' || rules.contents[0] === '-' ? rules.contents[0] : '';
  const groups = [...rules.contents.slice(sign.length)].map((g) => GROUPS[g]).filter((g) => g !== undefined);
  const has = (g: (typeof groups)[number]) => chars.some(g.test);
  if (sign === '-') {
    const bad = groups.filter(has);
    return bad.length ? `no ${bad.map((g) => g.name).join(' or ')}` : undefined;
  }
  if (sign === '+') return groups.some(has) ? undefined : `at least one of: ${groups.map((g) => g.name).join(', ')}`;
  const missing = groups.filter((g) => !has(g));
  return missing.length ? `it needs ${missing.map((g) => g.name).join(' and ')}` : undefined;
}
