import { isIP } from 'node:net';
import type { Static, TSchema } from 'typebox';
import { TOKEN_TYPES } from '../policy/catalogue.ts';
import { LIMITS } from '../tokens/limits.ts';
import { callingCodeOf } from '../util/phone.ts';
import { isSecretName } from './secret-fields.ts';
import { bool, decode, int, isSecretSchema, limitProblem, list, oneOf, secret, text, type Decoded } from './values.ts';

/**
 * The runtime configuration catalogue as data: every key otpd reads from `/system/setConfig`
 * (the `config` table), with its TypeBox type (bounds, choices, `secret: true`), its default and
 * what it does. `/system/setConfig` refuses a key that is not here and a value that does not fit
 * its entry; the same entries screen what is read back from the database (validate-stored.ts);
 * the config service reads typed values through them (`config.number('DeliveryWaitMs')`); and the
 * key reference in docs/configuration.md is generated from them (`npm run docs:config`).
 */

export interface ConfigSpec<S extends TSchema = TSchema> {
  /** The value's type: bounds and choices are in the schema, a secret has `secret: true`. */
  readonly type: S;
  /** The stored text in force while the key is not set (LinOTP stores strings); none: unset. */
  readonly default?: string;
  /** What the key does (one line of the docs). */
  readonly help: string;
  /** LinOTP's key (same meaning) or otpd's own. */
  readonly origin: 'LinOTP' | 'otpd';
  /** A rule the type cannot say: why the typed value is refused, or undefined. */
  readonly check?: (value: Static<S>) => string | undefined;
  /**
   * A LinOTP key otpd refuses whatever the value, with the reason: a setting that is accepted
   * and silently does nothing would leave an administrator believing it is in force.
   */
  readonly refused?: string;
}

/** A family of keys (`DeliveryDefaultCountry.<realm>`): one entry for every key `matches` accepts. */
export interface ConfigFamily extends ConfigSpec {
  /** The family as the docs show it. */
  readonly key: string;
  readonly matches: (key: string) => boolean;
}

const spec = <S extends TSchema>(s: ConfigSpec<S>): ConfigSpec<S> => s;
const linotp = 'LinOTP' as const;
const otpd = 'otpd' as const;

const HOST_PATTERN = /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
const badItems = (items: string[], ok: (item: string) => boolean, what: string): string | undefined => {
  const bad = items.filter((i) => !ok(i));
  return bad.length > 0 ? `${what}: ${bad.join(', ')}` : undefined;
};
const hosts = (items: string[]) => badItems(items, (h) => HOST_PATTERN.test(h) || isIP(h) !== 0, 'not a host name or *.domain pattern');
const country = (v: string) => (v.trim() === '' || callingCodeOf(v.trim()) ? undefined : 'not an ISO country code (e.g. DE)');
const sendLimit = (v: string) => limitProblem(v) ?? undefined;
const onlyTrue = (reason: string) => (v: boolean) => (v ? undefined : reason);

function replyAttributes(v: string): string | undefined {
  if (v === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch (e) {
    return `invalid JSON: ${(e as Error).message}`;
  }
  const ok = parsed && typeof parsed === 'object' && !Array.isArray(parsed) && Object.values(parsed).every((x) => typeof x === 'string');
  return ok ? undefined : 'must be a JSON object of attribute name to template string';
}

const SECONDS = 'seconds';
const limit = (def: string, per: string) => spec({ type: text('send limit'), default: def, check: sendLimit, origin: otpd, help: `send limit per ${per}: "count/seconds" ("count" = per hour); 0 or "off" = no limit` });
const legacyClass = (channel: string, read: boolean) => spec({
  type: text(), origin: linotp,
  help: read
    ? `LinOTP's ${channel} provider class; with its config it becomes the default provider \`imported_default\` while no ${channel} provider exists`
    : `LinOTP's ${channel} provider class: kept for compatibility, otpd has no ${channel} tokens and does not read it`,
});
const legacyConfig = (channel: string, read: boolean) => spec({
  type: secret(), origin: linotp,
  help: read
    ? `LinOTP's ${channel} provider JSON (see the class key); stored encrypted, shown with its secret fields censored`
    : `LinOTP's ${channel} provider JSON: kept encrypted for compatibility, otpd does not read it`,
});

/** Every key otpd reads, by name. */
export const CONFIG = {
  // ---- tokens: defaults of new tokens (LinOTP)
  DefaultMaxFailCount: spec({ type: int(1, LIMITS.maxMaxFail), default: '10', origin: linotp, help: 'failed attempts before a new token locks' }),
  DefaultCountWindow: spec({ type: int(1, LIMITS.maxCountWindow), default: '10', origin: linotp, help: 'HOTP look-ahead of new tokens' }),
  DefaultSyncWindow: spec({ type: int(1, LIMITS.maxSyncWindow), default: '1000', origin: linotp, help: 'resync look-ahead of new tokens' }),
  DefaultOtpLen: spec({ type: int(6, 10), default: '6', origin: linotp, help: 'OTP digits of new tokens' }),
  DefaultResetFailCount: spec({
    type: bool(), default: 'True', origin: linotp, check: onlyTrue('otpd always resets the fail counter after a success'),
    help: 'a success resets the fail counter; always on in otpd (False is refused)',
  }),
  'hotp.hashlib': spec({ type: oneOf(['sha1', 'sha256', 'sha512']), default: 'sha1', origin: linotp, help: 'HMAC hash of new HOTP/TOTP tokens' }),
  'totp.timeStep': spec({ type: oneOf([30, 60]), default: '30', origin: otpd, help: `TOTP time step of new tokens (${SECONDS})` }),
  'totp.timeWindow': spec({ type: int(0, LIMITS.maxTotpWindowSteps), default: '1', origin: otpd, help: 'TOTP steps accepted either side of now' }),
  AutoResync: spec({
    type: bool(), default: 'False', origin: linotp,
    check: (v) => (v ? 'otpd does not resynchronise automatically: use /admin/resync with two consecutive OTPs' : undefined),
    help: 'LinOTP\'s automatic resynchronisation (its replay hole was CVE-2019-12887): not in otpd, True is refused',
  }),
  AutoResyncTimeout: spec({
    type: text(), origin: linotp, refused: 'otpd does not resynchronise automatically (AutoResync), so this key has no effect and is refused',
    help: 'LinOTP\'s auto-resync window: refused',
  }),

  // ---- validation (LinOTP)
  PrependPin: spec({ type: bool(), default: 'True', origin: linotp, help: 'the PIN comes before the OTP (False: after it)' }),
  PassOnUserNotFound: spec({ type: bool(), default: 'False', origin: linotp, help: 'True lets a user the user stores do not know pass (not recommended)' }),
  PassOnUserNoToken: spec({ type: bool(), default: 'False', origin: linotp, help: 'True lets a user without a token pass (not recommended)' }),
  splitAtSign: spec({ type: bool(), default: 'true', origin: linotp, help: 'split `user@realm` into user and realm' }),
  DefaultRealm: spec({ type: text(), origin: linotp, help: 'the realm of a user given without one (set with /system/setDefaultRealm)' }),
  mayOverwriteClient: spec({
    type: list('IP addresses'), default: '', origin: linotp, check: (v) => badItems(v, (ip) => isIP(ip) !== 0, 'not an IP address'),
    help: 'callers (comma list of IP addresses) whose `client` parameter replaces their address',
  }),
  allowSamlAttributes: spec({ type: bool(), default: 'False', origin: linotp, help: '/validate/samlcheck answers with the user\'s attributes' }),
  realmbox: spec({ type: bool(), default: 'False', origin: linotp, help: 'the /auth login page offers a realm drop-down' }),
  policy_action_validation: spec({
    type: bool(), default: 'True', origin: linotp, check: onlyTrue('otpd always validates policy actions'),
    help: 'policy actions are checked when set; always on in otpd (False is refused)',
  }),
  ChallengeMaxAttempts: spec({ type: int(1, 100), default: '5', origin: otpd, help: 'wrong answers one challenge accepts before it closes' }),
  TransactionIdLength: spec({ type: int(12, 17), default: '17', origin: linotp, help: 'digits of transaction ids' }),
  DefaultChallengeValidityTime: spec({ type: int(1, 3600), default: '120', origin: linotp, help: `${SECONDS} an HMAC/TOTP challenge stays open` }),

  // ---- per-account failure limit (otpd; security.md 3.3)
  AccountFailDelayAfter: spec({ type: int(1, 100), default: '5', origin: otpd, help: 'consecutive failures of one account (realm + directory user, all tokens, HTTP and RADIUS) before refusal windows start' }),
  AccountFailDelayBase: spec({ type: int(1, 3600), default: '1', origin: otpd, help: `first refusal window (${SECONDS}); it doubles with each further failure` }),
  AccountFailDelayMax: spec({ type: int(1, 86_400), default: '900', origin: otpd, help: `longest refusal window (${SECONDS})` }),
  AccountMaxFail: spec({ type: int(1, LIMITS.maxMaxFail), default: '100', origin: otpd, help: 'consecutive failures after which the account is refused until /admin/reset (NIST SP 800-63B: at most 100)' }),
  AccountMaxParallel: spec({ type: int(1, 100), default: '10', origin: otpd, help: 'attempts of one account in flight at once below AccountFailDelayAfter; above it one at a time' }),

  // ---- out-of-band challenges (LinOTP)
  SMSProviderTimeout: spec({ type: int(1, 600), default: '300', origin: linotp, help: `${SECONDS} an SMS code stays valid` }),
  SMSBlockingTimeout: spec({ type: int(0, 3600), default: '30', origin: linotp, help: `${SECONDS} before a new trigger sends another SMS instead of reusing the open challenge` }),
  EmailChallengeValidityTime: spec({ type: int(1, 600), default: '600', origin: linotp, help: `${SECONDS} an e-mail code stays valid` }),
  EmailBlockingTimeout: spec({ type: int(0, 3600), default: '120', origin: linotp, help: `${SECONDS} before a new trigger sends another e-mail` }),
  email_provider_template_root: spec({ type: text(), default: '/custom-templates/mailtemplates', origin: linotp, help: 'directory of `file://` mail templates (names cannot leave it)' }),

  // ---- delivery (otpd; delivery.md)
  DeliveryWaitMs: spec({ type: int(100, 60_000), default: '3000', origin: otpd, help: 'how long an API answer waits for the provider\'s acceptance (ms)' }),
  DeliveryPollMs: spec({ type: int(100, 60_000), default: '1000', origin: otpd, help: 'dispatcher poll interval (ms)' }),
  DeliveryBackoffMs: spec({ type: int(1000, 3_600_000), default: '30000', origin: otpd, help: 'first back-off of an unhealthy provider (ms); doubles per failure' }),
  DeliveryBackoffMaxMs: spec({ type: int(1000, 86_400_000), default: '300000', origin: otpd, help: 'longest provider back-off (ms)' }),
  DeliveryRetryMs: spec({ type: int(100, 3_600_000), default: '5000', origin: otpd, help: 'first retry of a message every provider failed transiently (ms); doubles per pass' }),
  DeliveryRetryMaxMs: spec({ type: int(100, 86_400_000), default: '60000', origin: otpd, help: 'longest retry delay (ms)' }),
  DeliveryLogRetentionDays: spec({ type: int(1, 3650), default: '90', origin: otpd, help: 'delivery log rows older than this are deleted (days)' }),
  DeliveryLimitPerUser: limit('10/3600', 'channel + user@realm'),
  DeliveryLimitPerDestination: limit('10/3600', 'channel + normalised number or address'),
  DeliveryLimitPerPrefix: limit('30/3600', 'number without its last 4 digits'),
  DeliveryLimitPerCountry: limit('1000/86400', 'country calling code'),
  DeliveryLimitPerClient: limit('60/3600', 'channel + client IP'),
  DeliveryLimitGlobal: limit('10000/86400', 'channel (the global budget)'),
  DeliveryAllowedCountryCodes: spec({
    type: list('calling codes'), default: '', origin: otpd, check: (v) => badItems(v, (c) => c === '*' || /^\+?\d{1,4}$/.test(c), 'not a calling code'),
    help: 'country calling codes SMS may go to (`49,43,41`), `*` for any; empty: those of the default countries',
  }),
  DeliveryDefaultCountry: spec({ type: text('ISO country'), default: '', origin: otpd, check: country, help: 'ISO country of numbers without a +prefix' }),
  DeliveryBlockedPrefixes: spec({
    type: list('E.164 prefixes'), default: '', origin: otpd, check: (v) => badItems(v, (p) => /^\+?\d{1,15}$/.test(p), 'not an E.164 prefix'),
    help: 'E.164 prefixes refused on top of premium-rate/shared-cost ranges (`+4990,+44870`)',
  }),
  DeliveryPhoneValidation: spec({ type: oneOf(['valid', 'possible']), default: 'valid', origin: otpd, help: '`valid`: assigned ranges only; `possible`: length check only' }),
  DeliveryAllowedHosts: spec({ type: list('host names'), default: '', origin: otpd, check: hosts, help: 'provider hosts allowed (comma list, `*.example.com`); empty: any host not refused otherwise' }),
  DeliveryDenyPrivateHosts: spec({ type: bool(), default: 'false', origin: otpd, help: 'also refuse loopback and private provider addresses' }),

  // ---- LinOTP's legacy provider keys (imported once, spec 1.5)
  SMSProvider: legacyClass('SMS', true),
  SMSProviderConfig: legacyConfig('SMS', true),
  EmailProvider: legacyClass('e-mail', true),
  EmailProviderConfig: legacyConfig('e-mail', true),
  PushProvider: legacyClass('push', false),
  PushProviderConfig: legacyConfig('push', false),
  VoiceProvider: legacyClass('voice', false),
  VoiceProviderConfig: legacyConfig('voice', false),

  // ---- user stores (otpd; user-stores.md)
  UserCacheTTL: spec({ type: int(0, 86_400), default: '120', origin: otpd, help: `${SECONDS} a looked-up user is cached; 0 switches the cache off` }),
  UserStoreAllowedHosts: spec({ type: list('host names'), default: '', origin: otpd, check: hosts, help: 'user store hosts allowed (comma list, `*.example.com`); empty: any' }),
  UserStoreDenyPrivateHosts: spec({ type: bool(), default: 'False', origin: otpd, help: 'also refuse loopback, private, CGNAT and unique-local user store addresses' }),

  // ---- RADIUS (otpd; radius.md)
  RadiusReplyAttributes: spec({ type: text('JSON object'), check: replyAttributes, origin: otpd, help: 'JSON object of reply attribute name to template (`${field}` takes a user attribute) for Access-Accept' }),
} as const;

export type ConfigKey = keyof typeof CONFIG;
export type ConfigValue<K extends ConfigKey> = Static<(typeof CONFIG)[K]['type']>;
type KeysOf<T> = { [K in ConfigKey]: ConfigValue<K> extends T ? K : never }[ConfigKey];
export type NumberKey = KeysOf<number>;
export type BoolKey = KeysOf<boolean>;
export type ListKey = KeysOf<string[]>;
/** Keys of the families, as the typed readers take them. */
export type FamilyKey = `DeliveryDefaultCountry.${string}` | `${string}_CHALLENGE_PROMPT`;
export type StringKey = KeysOf<string> | FamilyKey;

const PROMPT_TYPES = TOKEN_TYPES.map((t) => t.toUpperCase());
const REALM_KEY = /^DeliveryDefaultCountry\.[A-Za-z0-9_.-]{1,64}$/;
const RESOLVER_KEY = /^(ldap|sql|passwd|http)resolver\.[A-Za-z0-9_]+\.[A-Za-z0-9_.-]+$/;

/** Whether a key names a secret: any dot- or colon-separated part does (`smtp.password`, `ldapresolver.BINDPW.corp`). */
export const namesSecret = (key: string): boolean => key.split(/[.:]/).some(isSecretName);

/** Keys otpd accepts by the pattern of their name. */
export const FAMILIES: readonly ConfigFamily[] = [
  {
    key: '<TYPE>_CHALLENGE_PROMPT', matches: (k) => k.endsWith('_CHALLENGE_PROMPT') && PROMPT_TYPES.includes(k.slice(0, -'_CHALLENGE_PROMPT'.length)),
    type: text(), origin: linotp,
    help: `the message of a challenge to a token of that type (${PROMPT_TYPES.join(', ')}); unset: \`sms submitted\`, \`e-mail sent successfully\`, \`Please enter your otp value: \` (HMAC), else \`Otp:\``,
  },
  {
    key: 'DeliveryDefaultCountry.<realm>', matches: (k) => REALM_KEY.test(k), type: text('ISO country'), origin: otpd, check: country as (v: unknown) => string | undefined,
    help: 'ISO country of numbers without a +prefix for users of that realm; unset: DeliveryDefaultCountry',
  },
  {
    key: '<type>resolver.<field>.<name>', matches: (k) => RESOLVER_KEY.test(k), type: text(), origin: linotp,
    help: 'LinOTP\'s resolver definitions as config keys (`ldapresolver.BINDPW.corp`): kept (secret-named fields encrypted) for LinOTP tooling; otpd reads its user stores from /system/setResolver, not from these',
  },
  {
    key: '<any key naming a secret>', matches: namesSecret, type: secret(), origin: linotp,
    help: 'a key any dot-separated part of which names a secret (`smtp.password`, `client_secret`, see below): stored encrypted and never shown; otpd reads none of these itself',
  },
];

const EXACT: ReadonlyMap<string, ConfigSpec> = new Map(Object.entries(CONFIG));

/** The entry of a key: by name, else by the first family that matches; undefined for a key otpd does not know. */
export function lookup(key: string): ConfigSpec | undefined {
  return EXACT.get(key) ?? FAMILIES.find((f) => f.matches(key));
}

/** The entry of a key by name only (not a family). */
export const exact = (key: string): ConfigSpec | undefined => EXACT.get(key);

/** Whether the catalogue marks a known key's value secret; undefined for a key it does not know by name. */
export function catalogueSecret(key: string): boolean | undefined {
  const s = EXACT.get(key);
  return s ? isSecretSchema(s.type) : undefined;
}

/** The typed value of a plain-text value for an entry, or why it is refused. */
export function specDecode(s: ConfigSpec, value: string): Decoded {
  if (s.refused) return { ok: false, problem: s.refused };
  const decoded = decode(s.type, value);
  if (!decoded.ok) return decoded;
  const problem = (s.check as ((v: unknown) => string | undefined) | undefined)?.(decoded.value);
  return problem ? { ok: false, problem } : decoded;
}

/** Why a plain-text value is refused for an entry, or null when it is fine. */
export function specProblem(s: ConfigSpec, value: string): string | null {
  const decoded = specDecode(s, value);
  return decoded.ok ? null : decoded.problem;
}

/** The stored text of every key that has a default, by key (what `/system/getConfig` shows while the key is unset). */
export function configDefaults(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, s] of EXACT) if (s.default !== undefined) out[key] = s.default;
  return out;
}
