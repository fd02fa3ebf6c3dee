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
