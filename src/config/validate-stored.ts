import { isIP } from 'node:net';
import { LIMITS } from './defaults.ts';

/**
 * The rules a runtime configuration value (`/system/setConfig`, `config` table) must meet.
 * `/system/setConfig` refuses a value that breaks one; the same rules screen what is read back
 * from the database, so a value written around the API (directly, by an older node) can never
 * switch a limit off: the server refuses to start on it, and a running node ignores it.
 */

export interface LimitSpec {
  max: number;
  windowMs: number;
}

/** Parses "count/seconds" or "count" (per hour); undefined = no limit. */
export function parseLimit(value: string): LimitSpec | undefined {
  const v = value.trim().toLowerCase();
  if (!v || v === 'off' || v === '0') return undefined;
  const m = /^(\d+)\s*(?:\/\s*(\d+)\s*(s|m|h|d)?)?$/.exec(v);
  if (!m) return undefined;
  const max = Number(m[1]);
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[(m[3] ?? 's') as 's' | 'm' | 'h' | 'd'];
  const seconds = m[2] ? Number(m[2]) * unit : 3600;
  if (max <= 0 || seconds <= 0) return undefined;
  return { max, windowMs: seconds * 1000 };
}

/** Validates a limit value for setConfig; null when fine. */
export function limitProblem(value: string): string | null {
  const v = value.trim().toLowerCase();
  if (!v || v === 'off' || v === '0') return null;
  return parseLimit(v) ? null : 'use "count/seconds" (e.g. 10/3600), "count" (per hour) or "off"';
}

/** Keys whose values are bounded integers, so one request's work stays bounded (security B.2 item 5). */
export const CONFIG_BOUNDS: Record<string, [number, number]> = {
  DefaultMaxFailCount: [1, LIMITS.maxMaxFail],
  DefaultCountWindow: [1, LIMITS.maxCountWindow],
  DefaultSyncWindow: [1, LIMITS.maxSyncWindow],
  DefaultOtpLen: [6, 10],
  DefaultChallengeValidityTime: [1, 3600],
  SMSProviderTimeout: [1, 600],
  SMSBlockingTimeout: [0, 3600],
  EmailChallengeValidityTime: [1, 600],
  EmailBlockingTimeout: [0, 3600],
  TransactionIdLength: [12, 17],
  ChallengeMaxAttempts: [1, 100],
  'totp.timeWindow': [0, LIMITS.maxTotpWindowSteps],
  DeliveryWaitMs: [100, 60_000],
  DeliveryPollMs: [100, 60_000],
  DeliveryBackoffMs: [1000, 3_600_000],
  DeliveryBackoffMaxMs: [1000, 86_400_000],
  DeliveryRetryMs: [100, 3_600_000],
  DeliveryRetryMaxMs: [100, 86_400_000],
  DeliveryLogRetentionDays: [1, 3650],
  UserCacheTTL: [0, 86_400],
  AccountFailDelayAfter: [1, 100],
  AccountFailDelayBase: [1, 3600],
  AccountFailDelayMax: [1, 86_400],
  AccountMaxFail: [1, LIMITS.maxMaxFail],
  AccountMaxParallel: [1, 100],
};

/** Host policy settings of providers and user stores (util/net.ts createHostPolicy). */
const HOST_SWITCHES = new Set(['DeliveryDenyPrivateHosts', 'UserStoreDenyPrivateHosts']);
const HOST_LISTS = new Set(['DeliveryAllowedHosts', 'UserStoreAllowedHosts']);
const HOST_PATTERN = /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

/** Longest accepted value. */
export const MAX_CONFIG_VALUE_LENGTH = 4096;

/** Why `value` is not acceptable for `key` (plaintext value), or null when it is. */
export function configValueProblem(key: string, value: string): string | null {
  const bound = CONFIG_BOUNDS[key];
  if (bound) {
    if (!/^\d+$/.test(value)) return 'not an integer';
    const n = Number(value);
    if (n < bound[0] || n > bound[1]) return `must be between ${bound[0]} and ${bound[1]}`;
  }
  if (key.startsWith('DeliveryLimit')) {
    const problem = limitProblem(value);
    if (problem) return problem;
  }
  if (key === 'DeliveryPhoneValidation' && !['valid', 'possible'].includes(value)) return "use 'valid' or 'possible'";
  if (key === 'totp.timeStep' && !['30', '60'].includes(value)) return 'must be 30 or 60';
  if (key === 'RadiusReplyAttributes' && value !== '') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch (e) {
      return `invalid JSON: ${(e as Error).message}`;
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed) || Object.values(parsed).some((v) => typeof v !== 'string')) {
      return 'must be a JSON object of attribute name to template string';
    }
  }
  if (HOST_SWITCHES.has(key) && !/^(true|false|1|0|yes|no|on|off)$/i.test(value.trim())) return 'use True or False';
  if (HOST_LISTS.has(key)) {
    const bad = value.split(',').map((h) => h.trim()).filter((h) => h !== '' && !HOST_PATTERN.test(h) && isIP(h) === 0);
    if (bad.length > 0) return `not a host name or *.domain pattern: ${bad.join(', ')}`;
  }
  if (key === 'hotp.hashlib' && !['sha1', 'sha256', 'sha512'].includes(value)) return 'use sha1, sha256 or sha512';
  // LinOTP's automatic resynchronisation is not implemented (its replay hole was CVE-2019-12887):
  // refuse turning it on rather than store a setting that does nothing
  if (key === 'AutoResync' && !/^(false|0|no|off)$/i.test(value.trim())) return 'otpd does not resynchronise automatically: use /admin/resync with two consecutive OTPs';
  if (key === 'AutoResyncTimeout') return 'otpd does not resynchronise automatically (AutoResync), so this key has no effect and is refused';
  if (value.length > MAX_CONFIG_VALUE_LENGTH) return `value longer than ${MAX_CONFIG_VALUE_LENGTH} characters`;
  return null;
}

export interface StoredConfigRow {
  key: string;
  value: string;
  type: string;
}

export interface StoredConfigProblem {
  key: string;
  problem: string;
}

/**
 * Splits rows read from the `config` table into the ones to use and the ones refused. A refused
 * row keeps the key's previous valid entry (from `previous`) in force, else the default applies.
 * Secrets (`password` entries and secret-named keys, stored encrypted) are not limits and are taken as they are.
 */
export function screenStoredConfig<T extends StoredConfigRow>(
  rows: T[], previous: ReadonlyMap<string, T>, isSecret: (row: T) => boolean = (row) => row.type === 'password',
): { accepted: Map<string, T>; rejected: StoredConfigProblem[] } {
  const accepted = new Map<string, T>();
  const rejected: StoredConfigProblem[] = [];
  for (const row of rows) {
    const problem = isSecret(row) ? null : configValueProblem(row.key, row.value);
    if (!problem) {
      accepted.set(row.key, row);
      continue;
    }
    rejected.push({ key: row.key, problem });
    const kept = previous.get(row.key);
    if (kept) accepted.set(row.key, kept);
  }
  return { accepted, rejected };
}

/** Thrown at start when the stored configuration holds values the server would refuse. */
export class StoredConfigError extends Error {
  constructor(readonly problems: StoredConfigProblem[]) {
    super(
      `invalid runtime configuration in the database, refusing to start: ${problems.map((p) => `${p.key}: ${p.problem}`).join('; ')}` +
        ' (fix each value with /system/setConfig on a running node or in the config table, or delete it to use the default)',
    );
    this.name = 'StoredConfigError';
  }
}

/** Throws {@link StoredConfigError} naming every refused key; called once at server start. */
export function validateStoredConfig(config: { rejected: readonly StoredConfigProblem[] }): void {
  if (config.rejected.length > 0) throw new StoredConfigError([...config.rejected]);
}
