import type { HashName } from '../otp/hotp.ts';

/** A token row as the domain sees it (seed still sealed). */
export interface Token {
  id: number;
  serial: string;
  type: string;
  description: string;
  keyEnc: string;
  otplen: number;
  hashlib: HashName;
  counter: number;
  countWindow: number;
  syncWindow: number;
  maxFail: number;
  failCount: number;
  active: boolean;
  pinHash: string;
  pinSalt: string;
  userId: string;
  resolver: string;
  resolverClass: string;
  info: Record<string, string>;
  realms: string[];
  createdAt: number;
  lastAuthSuccess: number | null;
  lastAuthMatch: number | null;
  countAuth: number;
  countAuthSuccess: number;
}

/** What init parameters become, before the row is written. */
export interface TokenDraft {
  /** Seed bytes (HOTP/TOTP/sms/email) or the static password (pw) to seal. */
  secret: Buffer;
  otplen: number;
  hashlib: HashName;
  info: Record<string, string>;
  /** otpauth:// URI to show once (genkey), if the type has one. */
  enrollmentUrl?: (serial: string, label: string) => string;
}

export interface InitDefaults {
  otplen: number;
  hashlib: HashName;
  totpStepSeconds: number;
  totpWindowSteps: number;
}

/** Reads init parameters (`/admin/init`); throws OtpdError on bad input. */
export type ParamReader = {
  get(key: string): string | undefined;
  has(key: string): boolean;
};

/**
 * One token type. The OTP math lives in otp/; a type decides what a value means.
 * `verify` is pure: it returns the counter to store after a match, or null.
 */
export interface TokenType {
  readonly type: string;
  /** Serial prefix for generated serials. */
  readonly prefix: string;
  /** 'authenticate': PIN+OTP in one step; 'challenge': only via challenges (sms, email). */
  readonly mode: 'authenticate' | 'challenge';
  /** Does the type have an OTP part after the PIN? spass has none. */
  readonly hasOtp: boolean;
  init(params: ParamReader, defaults: InitDefaults, genkey: boolean): TokenDraft;
  /**
   * Checks `otp` against the token; returns the counter value to store after success. Every
   * candidate of the window is computed, so the work does not say whether or where the value
   * matched; `stopAtMatch` (the first factor already matched, so a match is the success the
   * answer says anyway) ends the search at the match.
   */
  verify(token: Token, secret: Buffer, otp: string, nowMs: number, stopAtMatch?: boolean): { nextCounter: number } | null;
}
