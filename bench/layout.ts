/**
 * What the bench's database holds, shared by the seeding child (seed.ts) and the
 * orchestrator (run.ts), which computes the OTPs the load generators send.
 *
 * Realm `bench` (flat-file resolver, 10,000 users u0000…u9999):
 *   u0000–u3799 HOTP, PIN `pin` (success and wrong-OTP rotation)
 *   u3800–u3899 HOTP, locked (fail counter at MaxFail)
 *   u3900–u3999 HOTP, account over its failure limit (AccountMaxFail)
 *   u4000–u7999 TOTP (window ±2 steps), PIN `pin`
 *   u8000–u8999 SMS, u9000–u9999 e-mail, PIN `pin` (a PIN alone triggers a challenge)
 * Realm `chal` (500 users c000…c499, HOTP, policy challenge_response=hmac): RADIUS Access-Challenge.
 * Realm `ldap` (slapd, 1,000 users l0000…l0999, HOTP): the LDAP success path.
 */
import { createHash } from 'node:crypto';

export const USERS = 10_000;
export const PIN = 'pin';
export const RADIUS_SECRET = 'bench-radius-secret';

export interface Range {
  prefix: string;
  digits: number;
  from: number;
  to: number;
}

export const HOTP_OK: Range = { prefix: 'u', digits: 4, from: 0, to: 3800 };
export const HOTP_LOCKED: Range = { prefix: 'u', digits: 4, from: 3800, to: 3900 };
export const ACCOUNT_LOCKED: Range = { prefix: 'u', digits: 4, from: 3900, to: 4000 };
export const TOTP: Range = { prefix: 'u', digits: 4, from: 4000, to: 8000 };
export const SMS: Range = { prefix: 'u', digits: 4, from: 8000, to: 9000 };
export const EMAIL: Range = { prefix: 'u', digits: 4, from: 9000, to: 10_000 };
export const CHAL: Range = { prefix: 'c', digits: 3, from: 0, to: 500 };
export const LDAP: Range = { prefix: 'l', digits: 4, from: 0, to: 1000 };

export const login = (r: Range, i: number) => `${r.prefix}${String(i).padStart(r.digits, '0')}`;
export const serialOf = (r: Range, i: number) => `B${r.prefix.toUpperCase()}${String(i).padStart(r.digits, '0')}`;
export const indices = (r: Range, limit = r.to - r.from) => Array.from({ length: Math.min(limit, r.to - r.from) }, (_, k) => r.from + k);

/** The seed of a bench token: deterministic, so the orchestrator can compute its OTPs. */
export function seedOf(serial: string): Buffer {
  return createHash('sha1').update(`otpd-bench-${serial}`).digest();
}

/** What a seeding run creates (PostgreSQL/MariaDB runs need only the HOTP success users). */
export interface SeedPlan {
  /** HOTP tokens u0000… (the success rotation), at most 3,800. */
  hotp: number;
  /** Locked tokens, over-limit accounts, TOTP, SMS, e-mail, RADIUS challenge users. */
  full: boolean;
  /** SMS gateway URL (HTTP, loopback) and SMTP port, with `full`. */
  smsUrl?: string;
  smtpPort?: number;
  /** slapd URL for the `ldap` realm. @default none (no ldap realm) */
  ldapUrl?: string;
}

export const LDAP_SUFFIX = 'dc=example,dc=org';
export const LDAP_BASE = `ou=people,${LDAP_SUFFIX}`;
export const LDAP_ADMIN_DN = `cn=admin,${LDAP_SUFFIX}`;
export const LDAP_ADMIN_PW = 'secret';
