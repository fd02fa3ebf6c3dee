import { getCountryCallingCode, parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';

export type PhoneCheck =
  | { ok: true; e164: string; callingCode: string; country?: string; type?: string }
  | { ok: false; reason: string };

/** Number types that cost the sender money or cannot receive an SMS: never sent to. */
const REFUSED_TYPES = new Set(['PREMIUM_RATE', 'SHARED_COST']);

export interface PhoneRules {
  /** ISO country for numbers without a +country prefix (e.g. "DE"). */
  defaultCountry?: string;
  /** 'valid' = in a range the numbering plan assigns; 'possible' = only the length fits. @default 'valid' */
  validation?: 'valid' | 'possible';
  /** Extra E.164 prefixes to refuse (e.g. "+4990"). */
  blockedPrefixes?: string[];
}

/**
 * Why a phone number taken from a request must be refused before it is trimmed, or null.
 * A `+` sent unencoded in a form body or query (`curl -d phone=+4915123456789`) arrives as a
 * space; trimming it and prefixing the default country would address another number.
 */
export function requestPhoneProblem(raw: string): string | null {
  if (/^\s/.test(raw)) return "starts with a space: a '+' sent unencoded arrives as a space; URL-encode it as %2B (e.g. phone=%2B4915123456789, or curl --data-urlencode)";
  return null;
}

/**
 * Why an international number (`+…` or `00…`) cannot be a phone number at all, or null:
 * an unknown country calling code, or a length the country's numbering plan never uses
 * (libphonenumber's `isPossible`). National numbers are not judged here (they need a default
 * country).
 */
export function impossibleInternationalNumber(raw: string): string | null {
  const input = raw.trim();
  if (!/^(\+|00)/.test(input)) return null;
  let parsed;
  try {
    parsed = parsePhoneNumberFromString(input.replace(/^00/, '+'));
  } catch {
    parsed = undefined;
  }
  if (!parsed) return 'not a possible phone number (too short, or no such country calling code)';
  if (!parsed.isPossible()) return `not a possible phone number for +${parsed.countryCallingCode} (wrong number of digits)`;
  return null;
}

/**
 * Normalises a number to E.164 with libphonenumber's full metadata and
 * refuses what must not be sent to: unusable numbers, unassigned ranges,
 * premium-rate and shared-cost numbers, configured blocked prefixes.
 */
export function checkPhone(raw: string, rules: PhoneRules = {}): PhoneCheck {
  const input = raw.trim();
  if (!input || input.length > 40) return { ok: false, reason: 'unusable phone number' };
  const country = rules.defaultCountry?.toUpperCase() as CountryCode | undefined;
  let parsed;
  try {
    parsed = parsePhoneNumberFromString(input.replace(/^00/, '+'), country ? { defaultCountry: country } : undefined);
  } catch {
    parsed = undefined;
  }
  if (!parsed) {
    return { ok: false, reason: input.startsWith('+') || input.startsWith('00') || country ? 'unusable phone number' : 'unusable phone number (not international and no default country)' };
  }
  const valid = (rules.validation ?? 'valid') === 'possible' ? parsed.isPossible() : parsed.isValid();
  if (!valid) return { ok: false, reason: 'phone number not in an assigned range' };
  const e164 = parsed.number;
  const type = parsed.getType();
  if (type && REFUSED_TYPES.has(type)) return { ok: false, reason: `${type.toLowerCase().replace('_', '-')} numbers are refused` };
  for (const p of rules.blockedPrefixes ?? []) {
    const prefix = p.trim();
    if (prefix && e164.startsWith(prefix.startsWith('+') ? prefix : `+${prefix}`)) return { ok: false, reason: 'phone number in a blocked range' };
  }
  return { ok: true, e164, callingCode: parsed.countryCallingCode, ...(parsed.country ? { country: parsed.country } : {}), ...(type ? { type } : {}) };
}

/** The calling code of an ISO country ("DE" → "49"), or undefined. */
export function callingCodeOf(country: string): string | undefined {
  try {
    return getCountryCallingCode(country.toUpperCase() as CountryCode);
  } catch {
    return undefined;
  }
}

/** The number without its last 4 digits: the unit SMS-pumping attacks iterate over. */
export function phonePrefix(e164: string): string {
  return e164.slice(0, Math.max(2, e164.length - 4));
}

/** A destination for logs: `+4915******78`, `a***@example.org`. */
export function maskDestination(channel: 'sms' | 'email', destination: string): string {
  const d = destination.trim();
  if (channel === 'email') {
    const at = d.lastIndexOf('@');
    if (at <= 0) return '***';
    return `${d[0]}***${d.slice(at)}`;
  }
  if (d.length <= 6) return '*'.repeat(d.length);
  const keep = Math.min(5, d.length - 4);
  return d.slice(0, keep) + '*'.repeat(d.length - keep - 2) + d.slice(-2);
}

/**
 * A destination to show its owner: `+49 151 ****78` (country code, the first three national
 * digits, the last two; always four stars, so the length is not told), `a***@example.org`.
 */
export function maskForOwner(channel: 'sms' | 'email', destination: string): string {
  if (channel === 'email') return maskDestination('email', destination);
  const parsed = parsePhoneNumberFromString(destination.trim());
  if (!parsed) return maskDestination('sms', destination);
  const national = String(parsed.nationalNumber);
  if (national.length < 7) return `+${parsed.countryCallingCode} ****`;
  return `+${parsed.countryCallingCode} ${national.slice(0, 3)} ****${national.slice(-2)}`;
}

const EMAIL = /^[^\s@<>()",;:\\[\]]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z0-9-]{2,63}$/;

/** A plain addr-spec: no display name, no line breaks, a dotted domain. Returns it with the domain lower-cased. */
export function checkEmail(raw: string): { ok: true; address: string } | { ok: false; reason: string } {
  const a = raw.trim();
  if (a.length > 254 || !EMAIL.test(a)) return { ok: false, reason: 'unusable e-mail address' };
  const at = a.lastIndexOf('@');
  return { ok: true, address: a.slice(0, at) + a.slice(at).toLowerCase() };
}
