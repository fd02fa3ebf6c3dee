/**
 * One catalogue of stable error codes. LinOTP's numbers where LinOTP has one
 * (spec 1.2); otpd's own codes are in the 2000 range. Messages are for people,
 * codes are for tests and clients. The envelope renders `ERR<code>: <message>`.
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

/** An error that is safe to show to the caller: code + message, never a stack. */
export class OtpdError extends Error {
  constructor(
    readonly code: number,
    message: string,
    /** HTTP status for the JSON envelope; LinOTP answers 200 for nearly everything. */
    readonly httpStatus = 200,
  ) {
    super(message);
    this.name = 'OtpdError';
  }
}

export const missingParameter = (name: string) =>
  new OtpdError(ErrorCodes.parameter, `Missing parameter: '${name}'`);

export const badParameter = (name: string, why: string) =>
  new OtpdError(ErrorCodes.parameter, `Invalid parameter '${name}': ${why}`);

/** A user store (LDAP, SQL, file) could not be reached: never "authenticated". */
export class UserStoreUnavailableError extends OtpdError {
  constructor(resolver: string, reason: string) {
    super(ErrorCodes.userStoreUnavailable, `user store unavailable: ${resolver}: ${reason}`);
    this.name = 'UserStoreUnavailableError';
  }
}
