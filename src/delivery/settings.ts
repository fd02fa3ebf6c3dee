import type { ConfigService } from '../config/service.ts';
import { callingCodeOf } from '../util/phone.ts';

/**
 * Delivery settings, read from the LinOTP-style config (`/system/setConfig`) on every use, so a
 * change on one node applies everywhere after the config revision moves. Their types, bounds
 * and defaults (otpd's, chosen to stop SMS pumping early without bothering real users) are
 * entries of the runtime config catalogue (config/catalogue.ts); read them typed through the
 * config service (`config.number('DeliveryWaitMs')`).
 */

/** @deprecated the stored text; read typed values with `config.string(key)`, `config.bool(key)`, …. */
export function setting(config: ConfigService, key: string): string {
  return config.get(key) ?? '';
}

// The send-limit syntax is a config value format, checked with the other config rules.
export { limitProblem, parseLimit, type LimitSpec } from '../config/values.ts';

/** The default country of a realm (`DeliveryDefaultCountry.<realm>`, else the global one). */
export function defaultCountry(config: ConfigService, realm?: string): string | undefined {
  const perRealm = realm ? config.string(`DeliveryDefaultCountry.${realm}`) : '';
  const c = (perRealm || config.string('DeliveryDefaultCountry')).trim().toUpperCase();
  return c || undefined;
}

/**
 * The allowed calling codes, or '*' for any. Empty setting: the codes of the
 * configured default countries (global and per realm); with none of those
 * either, any (and the service logs a warning at start).
 */
export function allowedCallingCodes(config: ConfigService): '*' | Set<string> {
  const list = config.list('DeliveryAllowedCountryCodes').map((c) => c.replace(/^\+/, ''));
  if (list.includes('*')) return '*';
  if (list.length > 0) return new Set(list);
  const countries = new Set<string>();
  const global = config.string('DeliveryDefaultCountry').trim();
  if (global) countries.add(global);
  for (const e of config.entries()) {
    if (e.key.startsWith('DeliveryDefaultCountry.')) {
      const perRealm = config.string(e.key as `DeliveryDefaultCountry.${string}`).trim();
      if (perRealm) countries.add(perRealm);
    }
  }
  const codes = new Set<string>();
  for (const c of countries) {
    const code = callingCodeOf(c);
    if (code) codes.add(code);
  }
  return codes.size > 0 ? codes : '*';
}
