import type { Token } from './types.ts';

/**
 * A token's usage limits (LinOTP's token info `validity_period_start`, `validity_period_end`,
 * `count_auth_max`, `count_auth_success_max`; set with `/admin/set` and `/admin/setValidity`).
 * Pure: the validation pipeline asks {@link usageRefusal} before it checks any secret, and the
 * conditional writes repeat the count limits so a parallel burst cannot pass them.
 */
export const USAGE_INFO = {
  validityStart: 'validity_period_start',
  validityEnd: 'validity_period_end',
  authMax: 'count_auth_max',
  successMax: 'count_auth_success_max',
} as const;

/** LinOTP's notation `DD/MM/YY HH:MM` (UTC), e.g. `31/12/26 23:59`. */
const LINOTP_TIME = /^(\d{1,2})\/(\d{1,2})\/(\d{2}|\d{4}) (\d{1,2}):(\d{2})$/;

/**
 * A point in time as `/admin/set` takes it: ISO 8601 (`2026-12-31T23:59:00Z`; without a zone it
 * is UTC), LinOTP's `DD/MM/YY HH:MM` (UTC), or Unix seconds. Milliseconds, or null when unreadable.
 */
export function parseUsageTime(value: string): number | null {
  const v = value.trim();
  if (/^\d{1,12}$/.test(v)) return Number(v) * 1000;
  const m = LINOTP_TIME.exec(v);
  if (m) {
    const [, d, mo, y, h, mi] = m.map(Number);
    const year = m[3].length === 2 ? 2000 + y : y;
    const ms = Date.UTC(year, mo - 1, d, h, mi);
    const back = new Date(ms);
    // 31/02/26 is no date
    return back.getUTCDate() === d && back.getUTCMonth() === mo - 1 && h < 24 && mi < 60 ? ms : null;
  }
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(v)) return null;
  const zoned = /(Z|[+-]\d{2}:?\d{2})$/.test(v) || v.length === 10 ? v : `${v}Z`;
  const ms = Date.parse(zoned.replace(' ', 'T'));
  return Number.isNaN(ms) ? null : ms;
}

export type UsageRefusal = { reason: 'tokenNotValid' | 'tokenUsageExceeded'; detail: string };

const limit = (raw: string | undefined): number | undefined => (raw === undefined || raw === '' ? undefined : /^\d+$/.test(raw) ? Number(raw) : -1);

/** The count limits of a token, for the conditional writes (undefined = none; an unreadable one is 0, fail closed). */
export function usageLimits(t: Token): { authMax?: number; successMax?: number } {
  const authMax = limit(t.info[USAGE_INFO.authMax]);
  const successMax = limit(t.info[USAGE_INFO.successMax]);
  return { authMax: authMax === -1 ? 0 : authMax, successMax: successMax === -1 ? 0 : successMax };
}

/**
 * Why the token may not be used at `nowMs`: before its validity period, after it, or past its
 * count limits; null when it may. An unreadable stored value refuses (fail closed).
 */
export function usageRefusal(t: Token, nowMs: number): UsageRefusal | null {
  const start = t.info[USAGE_INFO.validityStart];
  const end = t.info[USAGE_INFO.validityEnd];
  if (start) {
    const s = parseUsageTime(start);
    if (s === null || nowMs < s) return { reason: 'tokenNotValid', detail: 'validity period not started' };
  }
  if (end) {
    const e = parseUsageTime(end);
    if (e === null || nowMs >= e) return { reason: 'tokenNotValid', detail: 'validity period expired' };
  }
  const { authMax, successMax } = usageLimits(t);
  if (authMax !== undefined && t.countAuth >= authMax) return { reason: 'tokenUsageExceeded', detail: 'maximum number of authentication attempts exceeded' };
  if (successMax !== undefined && t.countAuthSuccess >= successMax) return { reason: 'tokenUsageExceeded', detail: 'maximum number of successful authentications exceeded' };
  return null;
}
