import type { ConfigService } from '../config/service.ts';
import { callingCodeOf } from '../util/phone.ts';

/**
 * Delivery settings, read from the LinOTP-style config (`/system/setConfig`)
 * on every use, so a change on one node applies everywhere after the config
 * revision moves. Defaults are otpd's, chosen to stop SMS pumping early
 * without bothering real users.
 */
export const DELIVERY_DEFAULTS: Record<string, string> = {
  /** How long an API answer waits for the provider's acceptance (ms). */
  DeliveryWaitMs: '3000',
  /** Dispatcher poll interval (ms). */
  DeliveryPollMs: '1000',
  /** First back-off of an unhealthy provider (ms); doubles per failure. */
  DeliveryBackoffMs: '30000',
  DeliveryBackoffMaxMs: '300000',
  /** First retry delay of a message after every provider failed transiently (ms); doubles per pass. */
  DeliveryRetryMs: '5000',
  DeliveryRetryMaxMs: '60000',
  /** Delivery log rows older than this are deleted (days). */
  DeliveryLogRetentionDays: '90',
  /** Send limits, "count/seconds" ("count" = per hour); 0 or "off" = no limit. */
  DeliveryLimitPerUser: '10/3600',
  DeliveryLimitPerDestination: '10/3600',
  DeliveryLimitPerPrefix: '30/3600',
  DeliveryLimitPerCountry: '1000/86400',
  DeliveryLimitPerClient: '60/3600',
  DeliveryLimitGlobal: '10000/86400',
  /** Country calling codes SMS may go to ("49,43,41"); "*" = any; empty = those of the default countries. */
  DeliveryAllowedCountryCodes: '',
  /** ISO country for numbers without +prefix; `DeliveryDefaultCountry.<realm>` per realm. */
  DeliveryDefaultCountry: '',
  /** E.164 prefixes refused on top of premium-rate/shared-cost ranges ("+4990,+44870"). */
  DeliveryBlockedPrefixes: '',
  /** 'valid' (assigned ranges only) or 'possible' (length check only). */
  DeliveryPhoneValidation: 'valid',
  /** Provider hosts allowed (comma list, `*.example.com`); empty = any host not refused otherwise. */
  DeliveryAllowedHosts: '',
  /** Refuse loopback/private provider addresses too. */
  DeliveryDenyPrivateHosts: 'false',
};

export function setting(config: ConfigService, key: string): string {
  if (config.has(key)) return config.get(key) ?? '';
  return DELIVERY_DEFAULTS[key] ?? config.get(key) ?? '';
}

export function intSetting(config: ConfigService, key: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number.parseInt(setting(config, key), 10);
  const fallback = Number.parseInt(DELIVERY_DEFAULTS[key] ?? '0', 10);
  const v = Number.isFinite(n) ? n : fallback;
  return Math.min(max, Math.max(min, v));
}

export function listSetting(config: ConfigService, key: string): string[] {
  return setting(config, key)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

// The send-limit syntax is a config value format, checked with the other config rules.
export { limitProblem, parseLimit, type LimitSpec } from '../config/validate-stored.ts';

/** The default country of a realm (`DeliveryDefaultCountry.<realm>`, else the global one). */
export function defaultCountry(config: ConfigService, realm?: string): string | undefined {
  const perRealm = realm ? config.get(`DeliveryDefaultCountry.${realm}`) : undefined;
  const c = (perRealm || setting(config, 'DeliveryDefaultCountry')).trim().toUpperCase();
  return c || undefined;
}

/**
 * The allowed calling codes, or '*' for any. Empty setting: the codes of the
 * configured default countries (global and per realm); with none of those
 * either, any (and the service logs a warning at start).
 */
export function allowedCallingCodes(config: ConfigService): '*' | Set<string> {
  const list = listSetting(config, 'DeliveryAllowedCountryCodes').map((c) => c.replace(/^\+/, ''));
  if (list.includes('*')) return '*';
  if (list.length > 0) return new Set(list);
  const countries = new Set<string>();
  const global = setting(config, 'DeliveryDefaultCountry').trim();
  if (global) countries.add(global);
  for (const e of config.entries()) if (e.key.startsWith('DeliveryDefaultCountry.') && e.value.trim()) countries.add(e.value.trim());
  const codes = new Set<string>();
  for (const c of countries) {
    const code = callingCodeOf(c);
    if (code) codes.add(code);
  }
  return codes.size > 0 ? codes : '*';
}
