/**
 * One catalogue of stable error codes. LinOTP's numbers where LinOTP has one
 * (spec 1.2); otpd's own codes are in the 2000 range. Messages are for people,
 * codes are for tests and clients. The envelope renders `ERR<code>: <message>`.
 *
 * Each entry of {@link Errors} is one condition: its stable `code`, its HTTP status
 * (LinOTP answers 200 for nearly everything) and a message template whose `{name}`
 * placeholders are the factory's parameters, so `Errors.missingParameter({ name: 'user' })`
 * is typed. The table in docs/api.md is generated from this catalogue
 * (`npm run docs:errors`) and a test keeps the two equal.
 */

interface Definition {
  readonly code: number;
  readonly message: string;
  /** @default 200 */
  readonly status?: number;
  /** One line for the docs: when this is answered. */
  readonly doc: string;
}

/** `'{name}' and {why}'` → `'name' | 'why'`. */
type Placeholders<S extends string> = S extends `${string}{${infer P}}${infer Rest}` ? P | Placeholders<Rest> : never;

type Factory<D extends Definition> = [Placeholders<D['message']>] extends [never]
  ? () => OtpdError
  : (params: Record<Placeholders<D['message']>, string | number>) => OtpdError;

export type ErrorFactories<T extends Record<string, Definition>> = { readonly [K in keyof T]: Factory<T[K]> & { readonly code: T[K]['code'] } };

/** An error that is safe to show to the caller: code + message, never a stack. */
export class OtpdError extends Error {
  constructor(
    readonly code: number,
    message: string,
    /** HTTP status for the JSON envelope; LinOTP answers 200 for nearly everything. */
    readonly httpStatus = 200,
    /** The catalogue key (`missingParameter`): the reason written to the audit. */
    readonly reason = 'error',
  ) {
    super(message);
    this.name = 'OtpdError';
  }
}

const fill = (template: string, params: Record<string, string | number> | undefined): string =>
  template.replace(/\{(\w+)\}/g, (_, k: string) => String(params?.[k] ?? `{${k}}`));

function defineErrors<const T extends Record<string, Definition>>(defs: T): ErrorFactories<T> {
  const seen = new Map<number, string>();
  const out: Record<string, unknown> = {};
  for (const [key, def] of Object.entries(defs)) {
    const other = seen.get(def.code);
    if (other) throw new Error(`error catalogue: ${key} and ${other} share code ${def.code}`);
    seen.set(def.code, key);
    const make = (params?: Record<string, string | number>) => new OtpdError(def.code, fill(def.message, params), def.status ?? 200, key);
    out[key] = Object.assign(make, { code: def.code });
  }
  return out as ErrorFactories<T>;
}

const DEFINITIONS = {
  // shared: requests and parameters (every area)
  internal: { code: -311, message: 'internal error', doc: 'An unexpected failure; the cause is in the log, never in the answer (HTTP 500 when the request itself could not be handled).' },
  missingParameter: { code: 905, message: "Missing parameter: '{name}'", doc: 'A required parameter is missing (LinOTP\'s ParameterError).' },
  invalidParameter: { code: 2100, message: "Invalid parameter '{name}': {why}", doc: 'A parameter has a value otpd does not accept (wrong form, out of bounds, not a string, control characters); the message says why.' },
  usage: { code: 77, message: 'Usage: {usage}', doc: '`/admin/set` or `/system/setDefault` without any parameter it knows.' },
  invalidRequest: { code: 2101, message: 'invalid request: {why}', status: 400, doc: 'The body could not be parsed (bad JSON, a malformed form body).' },
  unsupportedContentType: { code: 2102, message: 'unsupported content type', status: 400, doc: 'The body is neither a form (`application/x-www-form-urlencoded`) nor JSON.' },
  requestBodyTooLarge: { code: 2103, message: 'request body too large', status: 400, doc: 'The body is larger than 256 KiB.' },
  bodyNotAnObject: { code: 2104, message: 'the request body must be an object of parameters', doc: 'A JSON body that is not an object (an array, a string, a number).' },
  tooManyParameters: { code: 2105, message: 'more than {max} parameters', doc: 'The request carries more parameters than any endpoint takes.' },
  invalidParameterName: { code: 2106, message: "invalid parameter name '{name}'", doc: 'A parameter name outside 1-128 of A-Z a-z 0-9 _ . : - (with an optional `[]`).' },
  noSuchEndpoint: { code: 2107, message: 'no such endpoint: {path}', status: 404, doc: 'No endpoint has this path, or not for this method.' },
  requestHeadersTooLarge: { code: 2108, message: 'request line and headers too large', status: 431, doc: 'The URL (with its query string) and headers are larger than 16 KiB; send long parameters in a POST body.' },
  malformedHttp: { code: 2109, message: 'malformed HTTP request', status: 400, doc: 'The request is not valid HTTP/1.1 (a broken request line, header or chunked body); the connection is closed.' },

  // admins, sessions, API keys
  notAuthenticated: { code: 2001, message: 'authentication required', status: 401, doc: 'No valid credentials: no session or API key, an unknown, revoked or expired key, an ended session.' },
  csrfMismatch: { code: 2002, message: 'missing or wrong CSRF token (header X-CSRF-TOKEN)', status: 403, doc: 'A session call without the matching `X-CSRF-TOKEN` header (or `csrf_token` field).' },
  noSuchApiKey: { code: 2003, message: 'no API key with id {id}', doc: '`/admin/apikey/revoke` with an id no key has.' },
  adminLoginThrottled: { code: 2013, message: 'too many failed logins: try again in {seconds} s', status: 429, doc: '`/admin/login` refused for a while after repeated failures (per admin name or per client source), with `Retry-After`.' },
  adminExists: { code: 2600, message: "admin '{name}' exists already", doc: 'An administrator of that name exists (`otpd admin add`).' },
  noSuchAdmin: { code: 2601, message: "no admin '{name}'", doc: 'No local administrator has this name (API key creation, password change, removal).' },
  apiKeyRevoked: { code: 2602, message: 'API key {id} is already revoked', doc: '`/admin/apikey/revoke` of a key that was revoked before.' },
  sessionRequired: { code: 2603, message: 'API keys are created from a login session (or the otpd command line), not with an API key', doc: '`/admin/apikey/create` called with an API key: a leaked key cannot mint more.' },
  cannotRemoveSelf: { code: 2604, message: "admin '{name}' cannot remove itself: log in as another administrator", doc: '`/admin/admins/delete` of the calling administrator (that would lock it out mid-session, or leave no administrator).' },
  adminSessionRequired: {
    code: 2605, message: 'administrators are created from a login session (or the otpd command line), not with an API key',
    doc: '`/admin/admins/create` called with an API key: a leaked key cannot make itself a lasting login.',
  },

  // policies
  notAllowed: { code: 410, message: 'You do not have the administrative right {what}', doc: 'An admin policy does not grant this administrator the action, realm or token (LinOTP\'s PolicyException).' },
  invalidPolicy: { code: 2012, message: '{problem}', doc: 'A policy definition was refused (unknown action, wrong value type, bad user/client/time); the message names the policy and field.' },
  invalidPolicyName: { code: 8888, message: 'policy name may only contain the characters a-zA-Z0-9_', doc: '`/system/delPolicy` with a name no policy can have.' },
  policyLockout: { code: 2400, message: 'potential lock-out: after this change no administrator may write the system configuration (no active system policy grants write to a user); repeat with enforce=true to store it anyway', doc: 'A policy change would leave no administrator with `system` `write`; `enforce=true` stores it anyway.' },
  storedPolicyInvalid: {
    code: 2402,
    message: 'invalid policies in the database, refusing to start: {problems} (fix each with /system/setPolicy on a running node, or delete its row from the policies table)',
    doc: '`otpd serve` found stored policies that setPolicy would refuse (start-up only, never an API answer); a running node keeps the version it loaded before.',
  },
  policyFileEmpty: { code: 2401, message: 'Error loading policy. File is empty!', doc: '`/system/importPolicy` with an empty `file`.' },

  // tokens and enrollment
  genkeyAndOtpkey: { code: 344, message: 'setting an otpkey and genkey at the same time does not work', doc: '`/admin/init` with both `genkey` and `otpkey`.' },
  tokenLimitPerUser: { code: 411, message: 'The maximum number of allowed tokens per user is exceeded. Check the policies scope=enrollment, action=maxtoken', doc: 'The user owns as many tokens as enrollment policy `maxtoken` allows.' },
  tokenLimitPerType: {
    code: 412,
    message: 'The maximum number of allowed tokens of type {type} per user is exceeded. Check the policies scope=enrollment, action=maxtoken{upperType}',
    doc: 'The user owns as many tokens of this type as enrollment policy `maxtoken<TYPE>` allows.',
  },
  tokenLimitRealm: {
    code: 413,
    message: 'The maximum allowed number of tokens for the realm {realm} was reached. You can not init any more tokens. Check the policies scope=enrollment, action=tokencount.',
    doc: 'The realm holds as many tokens as enrollment policy `tokencount` allows.',
  },
  tokenAssigned: { code: 1105, message: 'token {serial} is already assigned to another user', doc: '`/admin/assign` of a token that belongs to someone else (unassign it first).' },
  tokenTypeClash: { code: 1112, message: 'token {serial} exists with type {type}; it cannot become {newType}', doc: '`/admin/init` with the serial of a token of another type.' },
  userOrSerialRequired: { code: 1212, message: 'Parameter user or serial required!', doc: 'A token call names neither `serial` nor `user`.' },
  unknownTokenType: { code: 1610, message: 'type {type} not supported', doc: '`/admin/init` with a token type otpd does not have.' },
  noFreeSerial: { code: 2200, message: 'could not generate a free serial', doc: 'Ten generated serials in a row were taken; send a `serial` or another `prefix`.' },
  noSuchToken: { code: 2201, message: 'no matching token: {selector}', doc: 'No token (visible to this administrator) has the serial or owner given.' },
  lostTokenExists: { code: 2202, message: 'a lost-token replacement {serial} exists already: remove it first to issue a new one', doc: '`/admin/losttoken` for a token that has its replacement `lost<serial>` (also when a parallel call made it a moment ago).' },
  lostTokenNoDestination: { code: 2203, message: 'the user store has no {what} for {user}: issue a password replacement (type=password) instead', doc: '`/admin/losttoken` with type email or sms for an owner without that attribute in the user store.' },
  tokenNotAssigned: { code: 2204, message: 'token {serial} has no owner', doc: '`/admin/losttoken` or `/admin/copyTokenUser` of a token that belongs to nobody.' },
  noUserPin: {
    code: 2205, message: 'token {serial} ({type}) has no user PIN: /admin/setPin sets the user PIN of mOTP and OCRA tokens, which otpd does not have; set the OTP PIN with /admin/set pin=',
    doc: '`/admin/setPin` (LinOTP: the user or SO PIN of mOTP/OCRA2 tokens); every otpd token type has only the OTP PIN of `/admin/set`.',
  },
  tokenFileRefused: { code: 2210, message: 'token file refused, nothing imported: {why}', doc: '`/admin/loadtokens` or `otpd tokens import`: the file does not parse, a token in it is not one otpd can take, or its serial exists with another type; no token of the file is stored.' },
  tokenFileType: { code: 2211, message: "token file type '{type}' is not supported: use {types}", doc: '`/admin/loadtokens` with a `type` otpd does not read (see docs/migration.md for the formats).' },
  tokenFileKeyNeeded: { code: 2212, message: 'the PSKC file is encrypted with {mode}: give the {param}', doc: 'An encrypted PSKC file without its pre-shared key (`psk`, hex) or password (`password`).' },

  // users, resolvers, realms
  userStoreUnavailable: { code: 2004, message: 'user store unavailable', doc: 'A user store (LDAP, SQL, file) could not be asked; never "authenticated". Details are in the log.' },
  overloaded: {
    code: 2009, message: 'server busy, try again in {seconds} s', status: 503,
    doc: 'The node is serving as many requests as `maxInFlight` allows and this one waited `maxQueueMs` for a slot, or would have at the rate slots free up (counting the time it sat unread while the event loop ran late): shed with HTTP 503 and `Retry-After` (docs/configuration.md, Overload).',
  },
  databaseUnavailable: {
    code: 2008, message: 'database unavailable, try again',
    doc: 'otpd\'s own database could not be used (server stopped or restarting, connection cut, disk full); never "authenticated", no attempt spent, nothing half-written. RADIUS stays silent instead. Details are in the log.',
  },
  resolverInUse: { code: 2005, message: "Resolver '{name}' still in use by the realms: {realms}", doc: '`/system/delResolver` of a resolver a realm still lists.' },
  unknownRealm: { code: 2006, message: "unknown realm '{realm}'", doc: 'No realm has this name (and no default realm applies).' },
  unknownUser: { code: 2350, message: 'user {user} not found', doc: 'The user named for a token (init, assign, select by user) is in none of the realm\'s user stores.' },
  noUserStore: { code: 2351, message: 'no user store is configured (see /system/setResolver and /system/setRealm)', doc: 'A call needs users, and no resolver and realm are defined.' },
  unknownResolverType: { code: 2352, message: "no such resolver type '{type}' defined!", doc: 'A resolver type otpd does not have (passwdresolver, ldapresolver, sqlresolver).' },
  resolverExists: { code: 2353, message: "Could not {mode} resolver, resolver '{name}' already exists!", doc: 'Creating or renaming a resolver to a name another resolver has.' },
  unknownResolver: { code: 2354, message: "no resolver named '{name}'", doc: 'No resolver has this name (update, rename, test).' },
  resolverTypeChange: { code: 2355, message: 'Modification of resolver type is not supported!', doc: 'Updating a resolver with another type; create a new resolver instead.' },
  unknownResolverSpec: { code: 2356, message: "unknown resolver or invalid resolver class specification: '{spec}'", doc: '`/system/setRealm` with a resolver that does not exist or whose class does not match.' },

  // delivery
  providerRefused: {
    code: 2007,
    message: '{reason}',
    doc: 'A provider definition or provider action was refused: an invalid configuration (the message names the keys), unknown provider or provider class, a class of the other type, a type otpd does not offer (push, voice), a managed provider changed without its password.',
  },
  invalidIdempotencyKey: { code: 2500, message: 'idempotency key must be 1-255 characters', doc: 'An outbox message was enqueued without a usable idempotency key (a caller inside otpd is wrong).' },
  invalidProviderName: { code: 2501, message: "Invalid parameter 'name': use 1-64 of A-Z a-z 0-9 _ . -", doc: 'A provider name with other characters, or longer than 64.' },
  unknownProviderType: { code: 2502, message: "Invalid parameter 'type': otpd offers sms and email providers, not '{type}'", doc: 'A provider type other than sms or email.' },
  invalidRecipient: { code: 2503, message: "Invalid parameter 'to': {reason}", doc: 'The destination of a test message is not a usable phone number (sms) or e-mail address (email).' },
  providerUsageUnknown: {
    code: 2504,
    message: "provider '{name}' was not deleted: cannot tell whether a policy uses it ({reason})",
    doc: 'delProvider fails closed when the stored policies cannot be read, or one that mentions the provider action does not parse.',
  },

  // RADIUS
  invalidRadiusClient: { code: 2010, message: '{field}: {why}', doc: 'A RADIUS client definition was refused (bad name, address, realm or secret; an address another client has); the message names the field.' },
  radiusClientExists: { code: 2800, message: 'RADIUS client {name} exists', doc: '`otpd radius client add` with a name a client has.' },
  noSuchRadiusClient: { code: 2801, message: 'no RADIUS client named {name}', doc: '`/system/delRadiusClient` (or the CLI) with a name no client has.' },
  radiusClientConflict: { code: 2802, message: 'could not create RADIUS client {name}: name or address already in use', doc: 'A concurrent write created a client with the same name or address first; read the clients and retry.' },

  // resolvers
  invalidResolverConfig: {
    code: 2300,
    message: 'Invalid resolver configuration: {problems}',
    doc: 'A resolver configuration value has the wrong type or format, or fails a check its schema cannot express (LDAP filter syntax, URI scheme, column map); each problem names its key. A missing key is 905.',
  },
  resolverHostRefused: {
    code: 2302,
    message: "Invalid parameter '{key}': {why}",
    doc: 'A resolver names a host the user-store host policy refuses (link-local, metadata, or private with UserStoreDenyPrivateHosts, or not in UserStoreAllowedHosts); nothing is connected.',
  },
  resolverSecretNotStored: {
    code: 2301,
    message: "Invalid parameter '{key}': __CENSORED__ sent but no value is stored",
    doc: 'setResolver got the placeholder for a secret the resolver does not have yet: send the secret itself.',
  },

  // runtime config
  unknownConfigKey: {
    code: 2701, message: "Unknown config key '{key}': otpd does not read it (docs/configuration.md lists the keys)",
    doc: '`/system/setConfig` was given a key that is not in the runtime configuration catalogue.',
  },
  unsupportedConfigKey: { code: 2702, message: "Config key '{key}' is refused: {reason}", doc: '`/system/setConfig` was given a LinOTP key that would have no effect in otpd.' },
  invalidConfigValue: {
    code: 2703, message: "Invalid value for config key '{key}': {problem}",
    doc: 'A `/system/setConfig` or `/system/setDefault` value does not fit its catalogue entry (type, bounds, choices).',
  },
  invalidConfigKey: { code: 2704, message: "Invalid config key '{key}': use 1-128 of A-Z a-z 0-9 _ . : -", doc: 'A config key with characters or a length otpd does not store.' },
  configPlaceholderWithoutSecret: {
    code: 2705, message: "'__CENSORED__' stands for a stored secret, but none is stored at {path}",
    doc: 'The placeholder of a secret was sent where no secret is stored; nothing of the request is written.',
  },
  storedConfigInvalid: {
    code: 2706,
    message: 'invalid runtime configuration in the database, refusing to start: {problems} (fix each value with /system/setConfig on a running node or in the config table, or delete it to use the default)',
    doc: '`otpd serve` found stored config values that setConfig would refuse (start-up only, never an API answer).',
  },
  invalidConfigFile: {
    code: 2707,
    message: 'config file {file}: {problems}',
    doc: '`otpd config apply` (or `OTPD_APPLY_FILE` at start) was given a file that does not parse, does not fit the file\'s schema, holds a secret as a value instead of an `{env: NAME}` / `{file: PATH}` reference, or names a reference that cannot be read; nothing is written.',
  },
  // self-service (/userservice)
  noUserSession: { code: 2900, message: 'No valid session', status: 401, doc: 'A `/userservice` call without a live `user_selfservice` session cookie and an equal `session` parameter (admin sessions and API keys do not count).' },
  selfserviceNotAllowed: { code: 2908, message: 'The policy settings do not allow you to {what}', doc: 'No selfservice policy grants the user this action (LinOTP answers 410); with no selfservice policy a user may only log in and read.' },
  notOwnToken: { code: 2901, message: 'You have no token {serial}', doc: 'A self-service call names a serial the user does not own (the same answer whether the serial exists or not).' },
  secondFactorNeeded: { code: 2902, message: 'To {what}, log in with one of your tokens first: this session was opened with the password alone', doc: 'Adding, removing or weakening a factor (enroll, assign, delete, unassign, setpin, reset) needs a session opened with a second factor while the user owns a token (security B.2 #24); turn on selfservice `mfa_login`.' },
  noDestinationInDirectory: { code: 2903, message: 'The user directory has no {what} for you: ask your administrator to add it, then enroll again', doc: 'Self-service SMS/e-mail enrollment uses the user-store mobile number or e-mail address only, and it is empty.' },
  destinationNotEditable: { code: 2904, message: '{what} must be the one in the user directory ({masked}); otpd does not let users choose it', doc: 'A self-service enroll of an SMS/e-mail token named a phone or address other than the user-store value.' },
  pinRefused: { code: 2905, message: 'PIN refused: {why}', doc: 'setpin: the PIN breaks the selfservice otp_pin_minlength / otp_pin_maxlength / otp_pin_contents policy.' },
  enrollmentNotConfirmed: { code: 2906, message: 'Token {serial} is waiting for its first code: confirm it with verify before enabling it', doc: 'enable on a self-enrolled HOTP/TOTP token that was never confirmed with a first code.' },
  selfserviceTypeRefused: { code: 2907, message: 'Token type {type} cannot be enrolled in self-service (use hmac, totp, sms or email)', doc: 'A self-service enroll names a token type otpd does not let users enroll.' },
} as const satisfies Record<string, Definition>;

/** The catalogue: `throw Errors.missingParameter({ name: 'user' })`. */
export const Errors = defineErrors(DEFINITIONS);

/** Every entry, for the generated docs table and its test. */
export const catalogue = (): { key: string; code: number; status: number; message: string; doc: string }[] =>
  Object.entries(DEFINITIONS as Record<string, Definition>).map(([key, d]) => ({ key, code: d.code, status: d.status ?? 200, message: d.message, doc: d.doc }));

/**
 * @deprecated being replaced by {@link Errors} (issue 11 item 3); do not add new uses.
 */
export const ErrorCodes = {
  // still used by the resolver-config checks (users/*.ts) with their tests, until they move to Errors
  parameter: 905,
  userStoreUnavailable: 2004,
} as const;

/** @deprecated use `Errors.missingParameter` (still used by the resolver-config checks in users/) */
export const missingParameter = (name: string) => Errors.missingParameter({ name });

/** @deprecated being replaced by specific catalogue entries */
export const badParameter = (name: string, why: string) =>
  new OtpdError(ErrorCodes.parameter, `Invalid parameter '${name}': ${why}`);

/** A user store (LDAP, SQL, file) could not be reached: never "authenticated". */
export class UserStoreUnavailableError extends OtpdError {
  constructor(readonly resolver: string, readonly reason: string) {
    super(Errors.userStoreUnavailable.code, `user store unavailable: ${resolver}: ${reason}`, 200, 'userStoreUnavailable');
    this.name = 'UserStoreUnavailableError';
  }
}
