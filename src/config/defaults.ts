/**
 * LinOTP's `/system/setConfig` keys with their defaults (spec section 10).
 * Values are strings as LinOTP stores them.
 */
export const CONFIG_DEFAULTS: Record<string, string> = {
  DefaultMaxFailCount: '10',
  DefaultCountWindow: '10',
  DefaultSyncWindow: '1000',
  DefaultOtpLen: '6',
  DefaultResetFailCount: 'True',
  DefaultChallengeValidityTime: '120',
  PrependPin: 'True',
  SMSProviderTimeout: '300',
  SMSBlockingTimeout: '30',
  EmailChallengeValidityTime: '600',
  EmailBlockingTimeout: '120',
  TransactionIdLength: '17',
  /** Always off in otpd: setConfig refuses turning it on (see config/validate-stored.ts). */
  AutoResync: 'False',
  'hotp.hashlib': 'sha1',
  splitAtSign: 'true',
  mayOverwriteClient: '',
  policy_action_validation: 'True',
  email_provider_template_root: '/custom-templates/mailtemplates',
  /** otpd: how many wrong answers one challenge accepts before it is closed. */
  ChallengeMaxAttempts: '5',
  /** otpd: TOTP time step and accepted steps either side. */
  'totp.timeStep': '30',
  'totp.timeWindow': '1',
  /** otpd: consecutive failures of one account (realm + user, all tokens, HTTP and RADIUS) before refusal windows start. */
  AccountFailDelayAfter: '5',
  /** otpd: first refusal window in seconds; it doubles with each further failure. */
  AccountFailDelayBase: '1',
  /** otpd: longest refusal window in seconds. */
  AccountFailDelayMax: '900',
  /** otpd: consecutive failures after which an account is refused until an admin reset (NIST SP 800-63B: at most 100). */
  AccountMaxFail: '100',
  /** otpd: attempts of one account in flight at once below the delay threshold (above it: one at a time). */
  AccountMaxParallel: '10',
};

/** Upper bounds that keep one request's work bounded (security B.2 item 5). */
export { LIMITS } from '../tokens/limits.ts';

export function isTrue(value: string | undefined): boolean {
  return value !== undefined && ['true', '1', 'yes', 'on'].includes(value.trim().toLowerCase());
}
