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
  internal: { code: -311, message: 'internal error', doc: 'An unexpected failure; the cause is in the log, never in the answer.' },
  missingParameter: { code: 905, message: "Missing parameter: '{name}'", doc: 'A required parameter is missing (LinOTP\'s ParameterError).' },
  // …the rest of the catalogue is filled in by issue 11 item 3
  // delivery
  providerRefused: {
    code: 2007,
    message: '{reason}',
    doc: 'A provider definition or provider action was refused: unknown provider or provider class, a class of the other type, a managed provider changed without its password.',
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
  // resolvers
  invalidResolverConfig: {
    code: 2300,
    message: 'Invalid resolver configuration: {problems}',
    doc: 'A resolver configuration value has the wrong type or format, or fails a check its schema cannot express (LDAP filter syntax, URI scheme, column map); each problem names its key. A missing key is 905.',
  },
  resolverSecretNotStored: {
    code: 2301,
    message: "Invalid parameter '{key}': __CENSORED__ sent but no value is stored",
    doc: 'setResolver got the placeholder for a secret the resolver does not have yet: send the secret itself.',
  },
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
  generic: 10,
  parameter: 905,
  tokenTypeUnsupported: 906,
  multipleTokenMatch: -33,
  usage: 77,
  genkeyAndOtpkey: 344,
  policy: 410,
  maxTokenUser: 411,
  maxTokenType: 412,
  tokenCountRealm: 413,
  authorize: 510,
  multipleTokensOnInit: 1101,
  assignFailed: 1105,
  counterUpdate: 1106,
  createFailed: 1112,
  removeFailed: 1132,
  userOrSerialRequired: 1212,
  unknownTokenType: 1610,
  invalidPolicyName: 8888,
  internal: -311,
  // otpd's own
  notAuthenticated: 2001,
  csrf: 2002,
  notFound: 2003,
  userStoreUnavailable: 2004,
  resolver: 2005,
  realm: 2006,
  provider: 2007,
  deliveryFailed: 2008,
  sendLimit: 2009,
  radiusClient: 2010,
  config: 2011,
  /** A policy definition was refused (unknown action, wrong value type, bad user/client/time). */
  invalidPolicy: 2012,
  /** /admin/login refused for a while after repeated failures (per admin name or per client source); HTTP 429. */
  adminLoginThrottled: 2013,
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** @deprecated use `Errors.missingParameter` */
export const missingParameter = (name: string) => Errors.missingParameter({ name });

/** @deprecated being replaced by specific catalogue entries */
export const badParameter = (name: string, why: string) =>
  new OtpdError(ErrorCodes.parameter, `Invalid parameter '${name}': ${why}`);

/** A user store (LDAP, SQL, file) could not be reached: never "authenticated". */
export class UserStoreUnavailableError extends OtpdError {
  constructor(resolver: string, reason: string) {
    super(ErrorCodes.userStoreUnavailable, `user store unavailable: ${resolver}: ${reason}`, 200, 'userStoreUnavailable');
    this.name = 'UserStoreUnavailableError';
  }
}
