import { forwardTargetsProblem } from '../forward/targets.ts';

/**
 * The policy action catalogue as data: every action otpd knows per scope, with
 * its value type, default and meaning (spec section 3.1). `parse.ts` validates
 * action strings against it, `evaluate.ts` uses the types to decide what a
 * value means, and `docs/policies.md` is generated from it
 * (`node --import tsx src/policy/gen-docs.ts`).
 *
 * One file on purpose, although it is over 400 lines: most of it is the single
 * table ACTIONS (one row per action, ~170 lines), and the rest is the types its
 * rows are written in and the lookups over it. Split by scope, a reader would
 * have to open several files to see the whole catalogue and whether an action
 * name is already taken; the rows look alike because they are rows of one table.
 */

export const SCOPES = [
  'authentication',
  'enrollment',
  'authorization',
  'selfservice',
  'admin',
  'system',
  'audit',
  'notification',
] as const;

export type Scope = (typeof SCOPES)[number];

export function isScope(s: string): s is Scope {
  return (SCOPES as readonly string[]).includes(s);
}

/**
 * Scopes in which an empty `user` or `client` field means "everybody"; in the
 * other scopes an empty field matches nobody (spec 3.2).
 */
export const EMPTY_MEANS_ALL_SCOPES: ReadonlySet<Scope> = new Set([
  'selfservice',
  'admin',
  'enrollment',
  'authorization',
  'authentication',
]);

/**
 * Scopes in which the action `*` ("every action") is allowed. These hold
 * rights only; in the others `*` would silently switch on every flag
 * (passthru, passOnNoToken, ...), so otpd refuses it there. LinOTP also
 * allows it in `selfservice`, where it would switch on mfa_passOnNoToken too.
 */
export const STAR_ACTION_SCOPES: ReadonlySet<Scope> = new Set(['admin', 'system', 'audit']);

/** Token types otpd implements; `<TYPE>` in action names is one of these, upper-cased. */
export const TOKEN_TYPES = ['hmac', 'totp', 'spass', 'pw', 'sms', 'email'] as const;
export type TokenTypeName = (typeof TOKEN_TYPES)[number];

export type ActionValue = string | number | boolean;

/** What values an action accepts. */
export type ValueType =
  /** `name` or `name=true` → true; `!name`, `name=false`, `name=0`, `name=-1` → false. */
  | { kind: 'bool' }
  /** A whole number. */
  | { kind: 'int'; min?: number; max?: number }
  /** Free text; `check` returns a reason when the text is unacceptable. */
  | { kind: 'string'; hint?: string; check?: (value: string) => string | undefined; lowercase?: boolean }
  /** Exactly one of `values`; `canonical` maps aliases (LinOTP's numbers) to the stored meaning. */
  | { kind: 'set'; values: readonly string[]; canonical?: Readonly<Record<string, string>> }
  /**
   * Space-separated list, each item from `items` (case-insensitive, stored
   * lower-case); when `combos` is given, the whole list must be one of them.
   */
  | { kind: 'list'; items: readonly string[]; combos?: readonly string[] }
  /** Space-separated names (e.g. providers, in fail-over order). */
  | { kind: 'names' };

/**
 * - `supported`: otpd acts on it (test/security/inert-policies.test.ts names the code that
 *   reads it and the test that proves it).
 * - `unsupported`: nothing in otpd reads it, so it is refused by `setPolicy`, `importPolicy`
 *   and `otpd policy import`, with `note` as the reason; a stored policy that carries it is
 *   loaded without it and a warning names the policy and the action. A policy action that is
 *   accepted but silently has no effect would be a hole (an administrator believes a
 *   restriction is in force), so there is no third state.
 */
export type ActionStatus = 'supported' | 'unsupported';

export interface ActionSpec {
  scope: Scope;
  /** Exact action name; for families the `<TYPE>` pattern, e.g. `maxtoken<TYPE>`. */
  name: string;
  type: ValueType;
  /** What otpd does when no policy sets the action; undefined = "off"/"unlimited"/"not set". */
  default?: ActionValue;
  description: string;
  status: ActionStatus;
  /** Why an action is unsupported (required then), or how otpd differs from LinOTP. */
  note?: string;
  /** For `<TYPE>` families: the concrete names, e.g. `maxtokenSMS`. */
  family?: readonly string[];
}

const bool = { kind: 'bool' } as const;
const count = { kind: 'int', min: 0 } as const;
const text = { kind: 'string' } as const;

const NAME_RE = /^[A-Za-z0-9_.-]+$/;
const tokenTypeItems = [...TOKEN_TYPES, '*'] as const;

function checkRegex(v: string): string | undefined {
  try {
    new RegExp(v);
    return undefined;
  } catch (e) {
    return `not a valid regular expression (${(e as Error).message})`;
  }
}

function checkCharClasses(v: string): string | undefined {
  return /^[Ccns]+$/.test(v) ? undefined : 'use only the letters C (upper case), c (lower case), n (digits), s (special characters)';
}

function checkDuration(v: string): string | undefined {
  return /^(\d+|(\d+[dhms])+)$/.test(v) ? undefined : 'days as a number, or a duration like 2d, 12h, 30m, 1d12h';
}

function checkRealmName(v: string): string | undefined {
  return NAME_RE.test(v) ? undefined : 'a realm name (letters, digits, _ . -)';
}

function checkEmailNotification(v: string): string | undefined {
  return /^email::[A-Za-z0-9_.-]+$/.test(v) ? undefined : "'email::<provider name>' (only e-mail notifications exist)";
}

/** Generates the concrete names of a `<TYPE>` family. */
function family(prefix: string): string[] {
  return TOKEN_TYPES.map((t) => `${prefix}${t.toUpperCase()}`);
}

function unsupported(scope: Scope, name: string, type: ValueType, description: string, note: string): ActionSpec {
  return { scope, name, type, description, status: 'unsupported', note };
}

/** Marks a catalogue entry as not acted on by otpd (refused), with the reason. */
const notInOtpd = (note: string) => ({ status: 'unsupported' as const, note });

const NO_AUTOASSIGNMENT = notInOtpd('otpd does not implement autoassignment (a user taking an unassigned token at login).');
const NO_AUTOASSIGNMENT_NOTE = NO_AUTOASSIGNMENT.note;
const NO_RANDOM_PIN = notInOtpd('otpd does not set random PINs on enrollment.');
const NO_NOTIFICATION = 'otpd sends no notification e-mails; nothing reads notification policies.';

/** Scopes in which `*` is refused although some actions are supported, with the reason. */
export const STAR_REFUSED: Readonly<Partial<Record<Scope, string>>> = {
  selfservice: 'each selfservice right is granted by name: * would also switch on mfa_passOnNoToken and the other flags',
};

/** Scopes none of whose actions otpd supports, with the reason (for `*` and the docs). */
export const UNSUPPORTED_SCOPES: Readonly<Partial<Record<Scope, string>>> = {
  notification: NO_NOTIFICATION,
};

const A = (
  scope: Scope,
  name: string,
  type: ValueType,
  description: string,
  extra: Partial<Pick<ActionSpec, 'default' | 'note' | 'status'>> = {},
): ActionSpec => ({ scope, name, type, description, status: 'supported', ...extra });

export const ACTIONS: readonly ActionSpec[] = [
  // ---------------------------------------------------------------- authentication
  A('authentication', 'otppin', {
    kind: 'set',
    values: ['0', '1', '2', '3', 'token_pin', 'password', 'only_otp', 'ignore_pin'],
    canonical: { '0': 'token_pin', '1': 'password', '2': 'only_otp', '3': 'ignore_pin' },
  }, 'What the fixed part of the password is: the token PIN (0, token_pin), the user-store password (1, password), nothing — only the OTP (2, only_otp), or anything — the PIN is not checked (3, ignore_pin). The typed value is always the name.', { default: 'token_pin' }),
  A('authentication', 'passthru', bool, 'Users without a token are checked against their user store password (and nothing else is tried when that fails).', { default: false }),
  A('authentication', 'passOnNoToken', bool, 'Users without a token always pass, whatever the password.', { default: false }),
  A('authentication', 'challenge_response', { kind: 'list', items: tokenTypeItems }, 'Space-separated token types (or *) that answer a PIN-only request with a challenge instead of checking PIN+OTP at once.'),
  A('authentication', 'smstext', text, 'Text of the SMS; placeholders <otp>, <serial>, <transactionid> (only when the request carried one).', { default: '<otp>' }),
  A('authentication', 'enforce_smstext', bool, 'Ignore the request parameters data/message when smstext is set.', { default: false }),
  A('authentication', 'sms_dynamic_mobile_number', bool, "Send the SMS to the owner's current mobile number from the user store instead of the number stored in the token.", { default: false }),
  A('authentication', 'autosms', bool, 'After a successful SMS OTP, send the next OTP at once.', { default: false }),
  A('authentication', 'trigger_sms', bool, 'Allow /validate/check_s with serial + challenge (no PIN) to send an SMS.', { default: false }),
  A('authentication', 'sms_provider', { kind: 'names' }, 'Space-separated SMS provider names, tried in this order (fail-over); unset = the default provider.'),
  A('authentication', 'email_provider', { kind: 'names' }, 'Space-separated e-mail provider names, tried in this order (fail-over); unset = the default provider.', { note: 'LinOTP takes a single provider name; otpd takes a fail-over list (a single name is a list of one).' }),
  A('authentication', 'emailtext', text, 'Body of the OTP e-mail; placeholders <otp>, <serial>.', { default: '<otp>' }),
  A('authentication', 'emailsubject', text, "Subject of the OTP e-mail; empty = the provider's EMAIL_SUBJECT.", { default: '' }),
  A('authentication', 'dynamic_email_address', bool, "Send the e-mail to the owner's current address from the user store instead of the address stored in the token.", { default: false }),
  A('authentication', 'disable_on_authentication_exceed', bool, 'Disable a token whose usage counters are exhausted.', notInOtpd('otpd refuses a token past its validity period or count limits (it neither authenticates nor gets a challenge) and leaves it as it is; an administrator disables or removes it.')),
  A('authentication', 'delete_on_authentication_exceed', bool, 'Delete a token whose usage counters are exhausted.', notInOtpd('otpd refuses a token past its validity period or count limits (it neither authenticates nor gets a challenge) and leaves it as it is; an administrator disables or removes it.')),
  A('authentication', 'forward_server', { kind: 'string', hint: 'linotp://host[:port][/path][?timeout=5]', check: forwardTargetsProblem }, 'Forward the requests of matching users (after the user is found) to the old LinOTP server of a switch-over over its HTTP API, and answer with its answer: linotp://host (https), https://… or http://…, several tried in order; timeout 1-30 s (default 5).'),
  A('authentication', 'forward_on_no_token', bool, 'With forward_server: forward only the users who own no token in otpd (after autoenrollment, passthru and passOnNoToken), so otpd answers for the users it knows.'),
  unsupported('authentication', 'voice_provider', { kind: 'names' }, 'Voice provider for voice tokens.', 'otpd has no voice tokens.'),
  unsupported('authentication', 'push_provider', { kind: 'names' }, 'Push provider for push tokens.', 'otpd has no push tokens.'),
  unsupported('authentication', 'qrtanurl', text, 'Callback URL of QR tokens.', 'otpd has no QR tokens.'),
  unsupported('authentication', 'qrtanurl_init', text, 'Rollout callback URL of QR tokens.', 'otpd has no QR tokens.'),
  unsupported('authentication', 'qrtoken_pairing_callback_url', text, 'QR token pairing callback URL.', 'otpd has no QR tokens.'),
  unsupported('authentication', 'qrtoken_pairing_callback_sms', text, 'QR token pairing callback number.', 'otpd has no QR tokens.'),
  unsupported('authentication', 'qrtoken_challenge_callback_url', text, 'QR token challenge callback URL.', 'otpd has no QR tokens.'),
  unsupported('authentication', 'qrtoken_challenge_callback_sms', text, 'QR token challenge callback number.', 'otpd has no QR tokens.'),
  unsupported('authentication', 'qrtoken_pairing_cert', text, 'QR token pairing certificate.', 'otpd has no QR tokens.'),
  unsupported('authentication', 'support_offline', { kind: 'list', items: ['qr', 'u2f', 'forward'] }, 'Token types with offline authentication.', 'otpd has no offline-capable token types.'),

  // ---------------------------------------------------------------- enrollment
  A('enrollment', 'autoenrollment', {
    kind: 'list',
    items: ['sms', 'email', '*'],
    combos: ['sms', 'email', 'sms email', 'email sms', '*'],
  }, "A user without any token who logs in with the user-store password gets an SMS or e-mail token from the directory's mobile/mail attribute. sms / email = only that type; 'sms email' or * = SMS when a mobile number exists, else e-mail; 'email sms' = e-mail first.", { note: "LinOTP accepts other combinations (e.g. 'sms * email') and then creates an unusable HMAC token; otpd refuses them." }),
  A('enrollment', 'autoassignment', bool, 'A user without a token may take an unassigned token of the realm by logging in with password+OTP.', NO_AUTOASSIGNMENT),
  A('enrollment', 'autoassignment_without_password', bool, 'As autoassignment, with the OTP alone (no PIN is set).', NO_AUTOASSIGNMENT),
  A('enrollment', 'autoassignment_from_realm', { kind: 'string', hint: 'realm name', check: checkRealmName, lowercase: true }, 'Realm whose unassigned tokens autoassignment_without_password takes; unset = the user\'s realm.', NO_AUTOASSIGNMENT),
  A('enrollment', 'autoassignment_forward', bool, 'Forward the credentials of remote tokens during autoassignment.', notInOtpd('otpd has no remote tokens and no autoassignment.')),
  A('enrollment', 'ignore_autoassignment_pin', bool, 'Do not set the password as token PIN on autoassignment.', NO_AUTOASSIGNMENT),
  A('enrollment', 'maxtoken', count, 'Most tokens one user may own (checked on init, enroll and assign, not on autoenrollment).'),
  {
    scope: 'enrollment',
    name: 'maxtoken<TYPE>',
    type: count,
    description: 'Most tokens of one type a user may own, e.g. maxtokenSMS=1.',
    status: 'supported',
    family: family('maxtoken'),
  },
  A('enrollment', 'tokencount', count, 'Most tokens in a realm.'),
  A('enrollment', 'otp_pin_random', { kind: 'int', min: 0, max: 99 }, 'Set a random PIN of this length on enrollment.', NO_RANDOM_PIN),
  A('enrollment', 'otp_pin_random_content', { kind: 'string', hint: 'letters of C c n s', check: checkCharClasses }, 'Characters of the random PIN: C upper case, c lower case, n digits, s special.', NO_RANDOM_PIN),
  A('enrollment', 'otp_pin_encrypt', { kind: 'int', min: 0, max: 1 }, 'Store the PIN encrypted (1) instead of hashed (0).', notInOtpd('otpd always stores PINs as keyed hashes; they are never stored encrypted.')),
  A('enrollment', 'lostTokenPWLen', { kind: 'int', min: 4, max: 128 }, 'Length of the password of a lost-token replacement (/admin/losttoken type=password).', { default: 10 }),
  A('enrollment', 'lostTokenPWContents', { kind: 'string', hint: 'letters of C c n s', check: checkCharClasses }, 'Characters of the lost-token password: C upper case, c lower case, n digits, s special (at least one of each).', { default: 'cCn', note: 'otpd leaves out look-alike characters (0 O 1 l I), since a help desk reads the password out.' }),
  A('enrollment', 'lostTokenValid', { kind: 'string', hint: 'days or duration', check: checkDuration }, 'Validity of a lost-token replacement: days, or a duration with d/h/m/s (e.g. 1d12h); the replacement stops working after it.', { default: '1d' }),
  A('enrollment', 'tokenlabel', text, 'Label of the enrollment URL (authenticator apps); placeholders <s> serial, <u> user, <r> realm.', notInOtpd("otpd's enrollment URLs carry the label given to /admin/init (else the serial); no policy changes it.")),
  A('enrollment', 'tokenissuer', text, 'Issuer of the enrollment URL (authenticator apps).', notInOtpd("otpd's enrollment URLs always carry the issuer 'otpd'; it is not configurable.")),
  A('enrollment', 'purge_rollout_token', bool, 'Remove the rollout token after the first login with another token.', notInOtpd('otpd has no rollout tokens.')),

  // ---------------------------------------------------------------- authorization
  A('authorization', 'authorize', bool, 'When any authorize policy exists, only users (and clients) matched by one whose value is true may authenticate.'),
  A('authorization', 'tokentype', { kind: 'list', items: tokenTypeItems }, 'Space-separated token types the user may authenticate with.', { note: 'otpd checks it before the OTP: a token of another type neither authenticates nor gets a challenge, and its OTP is not used up (LinOTP checks after a success).' }),
  A('authorization', 'serial', { kind: 'string', hint: 'regular expression', check: checkRegex }, 'The user may only authenticate with tokens whose serial matches this regular expression.', { note: 'otpd checks it before the OTP: a token whose serial does not match neither authenticates nor gets a challenge (LinOTP checks after a success).' }),
  A('authorization', 'setrealm', { kind: 'string', hint: 'realm name', check: checkRealmName, lowercase: true }, 'Replace the realm of the request with this realm before the user is resolved.'),
  A('authorization', 'detail_on_success', bool, 'Add user and token details to a successful /validate answer.', { default: false }),
  A('authorization', 'detail_on_fail', bool, 'Add details to a failed /validate answer.', { default: false }),

  // ---------------------------------------------------------------- notification
  A('notification', 'autoenrollment', { kind: 'string', hint: 'email::<provider>', check: checkEmailNotification }, 'After autoenrollment, e-mail the user a random PIN through this provider (the PIN replaces the password only when the mail was sent).', notInOtpd(NO_NOTIFICATION)),
  A('notification', 'enrollment', { kind: 'string', hint: 'email::<provider>', check: checkEmailNotification }, 'E-mail the user when a token is enrolled for them.', notInOtpd(NO_NOTIFICATION)),
  A('notification', 'setPin', { kind: 'string', hint: 'email::<provider>', check: checkEmailNotification }, 'E-mail the user when their token PIN is set.', notInOtpd(NO_NOTIFICATION)),

  // ---------------------------------------------------------------- selfservice
  // Read by /userservice and the /selfservice/ portal (src/userservice/): every action is a right
  // the user has only when a matching policy grants it (no selfservice policy: nothing allowed).
  {
    scope: 'selfservice',
    name: 'enroll<TYPE>',
    type: bool,
    description: 'The user may enroll tokens of this type: enrollHMAC, enrollTOTP (an authenticator app, active after its first code), enrollSMS, enrollEMAIL (to the user-store mobile number or e-mail address only).',
    family: ['HMAC', 'TOTP', 'SMS', 'EMAIL'].map((t) => `enroll${t}`),
    status: 'supported',
  },
  A('selfservice', 'enrollSPASS', bool, 'The user may enroll simple-pass tokens.', notInOtpd('a user-chosen static password is no second factor; otpd does not let users enroll spass tokens.')),
  A('selfservice', 'enrollPW', bool, 'The user may enroll password tokens.', notInOtpd('a user-chosen static password is no second factor; otpd does not let users enroll pw tokens.')),
  A('selfservice', 'assign', bool, 'The user may assign an unassigned token by its serial (and an OTP of it).'),
  A('selfservice', 'disable', bool, 'The user may disable own tokens.'),
  A('selfservice', 'enable', bool, 'The user may enable own tokens.'),
  A('selfservice', 'delete', bool, 'The user may delete own tokens.'),
  A('selfservice', 'unassign', bool, 'The user may give up own tokens.'),
  A('selfservice', 'resync', bool, 'The user may resynchronise own HOTP/TOTP tokens with two consecutive codes.'),
  A('selfservice', 'verify', bool, 'The user may test own tokens (an OTP, or a code sent to the phone or address).'),
  A('selfservice', 'reset', bool, 'The user may reset the fail counter of own tokens.'),
  A('selfservice', 'setOTPPIN', bool, 'The user may set the PIN of own tokens.'),
  A('selfservice', 'setDescription', bool, 'The user may change the description of own tokens.'),
  A('selfservice', 'setMOTPPIN', bool, 'The user may set mOTP PINs.', notInOtpd('otpd has no mOTP tokens.')),
  A('selfservice', 'getotp', bool, 'The user may read OTP values.', notInOtpd('otpd never shows OTP values to users.')),
  A('selfservice', 'otp_pin_minlength', { kind: 'int', min: 0, max: 99 }, 'Shortest PIN a user may set (setpin).'),
  A('selfservice', 'otp_pin_maxlength', { kind: 'int', min: 0, max: 99 }, 'Longest PIN a user may set (setpin).'),
  A('selfservice', 'otp_pin_contents', { kind: 'string', hint: '[+|-] letters of c n s u o', check: (v) => (/^[+-]?[cnsuo]+$/.test(v) ? undefined : 'optional + or - followed by the letters c (letters), n (digits), s (special), u (upper case), o (others)') }, 'Which characters a PIN the user sets must contain (no sign: one of each; +: one of the group; -: none of them).'),
  A('selfservice', 'history', bool, 'The user may read the audit trail of own logins and tokens.'),
  A('selfservice', 'getserial', bool, 'The user may look up an unassigned token by an OTP value (getSerialByOtp).'),
  A('selfservice', 'mfa_login', bool, 'Self-service login requires a second factor after the password: an OTP, or a code sent to the user\'s SMS or e-mail token.'),
  A('selfservice', 'mfa_3_fields', bool, 'The self-service login form has a separate OTP field.'),
  A('selfservice', 'mfa_passOnNoToken', bool, 'With mfa_login, users without a token may log in with the password alone.'),
  A('selfservice', 'edit_sms', { kind: 'int', min: 0, max: 1 }, '1 = the user may choose the phone number of an SMS token; 0 = it must be the user-store mobile number.', notInOtpd('otpd always enrolls the user-store mobile number (LinOTP\'s edit_sms=0); a user-chosen number would let a stolen password bind a new phone.')),
  A('selfservice', 'edit_email', { kind: 'int', min: 0, max: 1 }, '1 = the user may choose the address of an e-mail token; 0 = it must be the user-store address.', notInOtpd('otpd always enrolls the user-store e-mail address (LinOTP\'s edit_email=0); a user-chosen address would let a stolen password bind a new mailbox.')),
  A('selfservice', 'autoassignment', bool, 'The MFA login may autoassign a token (the enrollment scope decides how).', notInOtpd(NO_AUTOASSIGNMENT_NOTE)),
  A('selfservice', 'autoenrollment', bool, 'The MFA login may autoenroll a token (the enrollment scope decides the type).', notInOtpd('the first /validate/check login autoenrolls (enrollment scope); the self-service login does not.')),
  A('selfservice', 'show_landing_page', bool, 'Show the landing page as the first tab.', notInOtpd('the otpd portal has one page per task and no landing tab.')),
  A('selfservice', 'footer_text', text, 'Footer text of the self-service pages.'),
  A('selfservice', 'imprint_url', text, 'Link to an imprint page (footer of the self-service pages).'),
  A('selfservice', 'privacy_notice_url', text, 'Link to a privacy notice (footer of the self-service pages).'),

  // ---------------------------------------------------------------- admin
  {
    scope: 'admin',
    name: 'init<TYPE>',
    type: bool,
    description: 'The administrator may enroll tokens of this type (/admin/init), e.g. initHMAC.',
    status: 'supported',
    family: family('init'),
  },
  ...(
    [
      ['enable', 'enable tokens (/admin/enable)'],
      ['disable', 'disable tokens (/admin/disable)'],
      ['set', 'change token settings, PINs included (/admin/set)'],
      ['resync', 'resynchronise tokens (/admin/resync)'],
      ['reset', 'reset fail counters (/admin/reset)'],
      ['assign', 'assign tokens to users (/admin/assign)'],
      ['unassign', 'unassign tokens (/admin/unassign)'],
      ['remove', 'delete tokens (/admin/remove)'],
      ['userlist', 'list users (/admin/userlist)'],
      ['tokenowner', 'look up the owner of a token (/admin/getTokenOwner)'],
      ['show', 'list tokens (/admin/show)'],
      ['getserial', 'find a token by one of its OTP values (/admin/getSerialByOtp)'],
      ['copytokenpin', 'copy the PIN of one token to another (/admin/copyTokenPin)'],
      ['copytokenuser', 'copy the owner of one token to another (/admin/copyTokenUser)'],
      ['losttoken', 'issue lost-token replacements (/admin/losttoken)'],
      ['import', 'import token seed files (/admin/loadtokens)'],
    ] as const
  ).map(([name, what]) => A('admin', name, bool, `The administrator may ${what}, in the realms of the policy.`)),
  ...(
    [
      ['setOTPPIN', 'set token PINs', "/admin/setPin sets the user PIN of mOTP/OCRA tokens, which otpd does not have, so it refuses every token; OTP PINs are set through /admin/set and /admin/init, which the rights 'set' and 'init<TYPE>' govern (so '!setOTPPIN' would not stop an administrator who has 'set')."],
      ['checkstatus', 'see open challenges', 'otpd has no /admin/checkstatus.'],
      ['manageToken', 'use the token management pages', 'otpd has no token management pages.'],
      ['setMOTPPIN', 'set mOTP PINs', 'otpd has no mOTP tokens.'],
      ['setOCRAPIN', 'set OCRA PINs', 'otpd has no OCRA tokens.'],
      ['getotp', 'read OTP values of tokens', 'otpd never shows OTP values.'],
      ['unpair', 'unpair QR/push tokens', 'otpd has no paired tokens.'],
      ['totp_lookup', 'look up the last TOTP use', 'otpd has no /admin/totp_lookup.'],
    ] as const
  ).map(([name, what, why]) => A('admin', name, bool, `The administrator may ${what}, in the realms of the policy.`, notInOtpd(why))),

  // ---------------------------------------------------------------- system, audit
  A('system', 'read', bool, 'The administrator may read the system configuration (getConfig, getPolicy, getResolvers, ...).'),
  A('system', 'write', bool, 'The administrator may change the system configuration (setConfig, setPolicy, setResolver, ...).'),
  A('audit', 'view', bool, 'The administrator may search the audit log.'),
];

/**
 * Which right each `/system/<method>` needs (LinOTP's map; spec 1.5). A method
 * not listed needs `write`.
 */
export const SYSTEM_ACTION_RIGHTS: Readonly<Record<string, 'read' | 'write'>> = {
  setDefault: 'write',
  setConfig: 'write',
  delConfig: 'write',
  getConfig: 'read',
  getRealms: 'read',
  delResolver: 'write',
  getResolver: 'read',
  setResolver: 'write',
  getResolvers: 'read',
  setDefaultRealm: 'write',
  getDefaultRealm: 'read',
  setRealm: 'write',
  delRealm: 'write',
  setPolicy: 'write',
  importPolicy: 'write',
  policies_flexi: 'read',
  getPolicy: 'read',
  getPolicyDef: 'read',
  checkPolicy: 'read',
  delPolicy: 'write',
  setSupport: 'write',
  setProvider: 'write',
  setDefaultProvider: 'write',
  delProvider: 'write',
  testProvider: 'read',
  getProvider: 'read',
  getReportedStatuses: 'read',
};

// nested maps: callers pass constant strings, so lookups hash no new string
const byKey = new Map<string, Map<string, ActionSpec>>();
const byLowerKey = new Map<string, string>();
for (const spec of ACTIONS) {
  let inScope = byKey.get(spec.scope);
  if (!inScope) byKey.set(spec.scope, (inScope = new Map()));
  for (const name of spec.family ?? [spec.name]) {
    inScope.set(name, spec);
    byLowerKey.set(`${spec.scope}\0${name.toLowerCase()}`, name);
  }
}

/** The catalogue entry of `action` in `scope` (exact name; families by their concrete names). */
export function actionSpec(scope: Scope, action: string): ActionSpec | undefined {
  return byKey.get(scope)?.get(action);
}

/** The correctly spelt name when `action` differs only in case (for "did you mean"). */
export function suggestAction(scope: Scope, action: string): string | undefined {
  return byLowerKey.get(`${scope}\0${action.toLowerCase()}`);
}

/** The default otpd applies when no policy sets the action (undefined = off / unlimited / unset). */
export function actionDefault(scope: Scope, action: string): ActionValue | undefined {
  return actionSpec(scope, action)?.default;
}

/** Why otpd refuses `action` (or `*`) in `scope`, or undefined when it is supported or unknown. */
export function unsupportedReason(scope: Scope, action: string): string | undefined {
  if (action === '*') return UNSUPPORTED_SCOPES[scope] ?? STAR_REFUSED[scope];
  const spec = actionSpec(scope, action);
  return spec?.status === 'unsupported' ? spec.note : undefined;
}

/** Every concrete action name of a scope (families expanded). */
export function actionNames(scope: Scope): string[] {
  return ACTIONS.filter((a) => a.scope === scope).flatMap((a) => a.family ?? [a.name]);
}

/** Human description of a value type, for error messages and docs. */
export function describeType(type: ValueType): string {
  switch (type.kind) {
    case 'bool':
      return 'boolean';
    case 'int':
      return type.min !== undefined && type.max !== undefined
        ? `integer ${type.min}..${type.max}`
        : type.min !== undefined
          ? `integer >= ${type.min}`
          : 'integer';
    case 'string':
      return type.hint ? `text (${type.hint})` : 'text';
    case 'set':
      return `one of ${type.values.join(', ')}`;
    case 'list':
      return type.combos
        ? `one of ${type.combos.map((c) => `'${c}'`).join(', ')}`
        : `space-separated list of ${type.items.join(', ')}`;
    case 'names':
      return 'space-separated names';
  }
}
