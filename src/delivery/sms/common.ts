import { readFileSync } from 'node:fs';
import { Type, type Static } from 'typebox';
import type { OutgoingMessage, ProviderContext } from '../types.ts';
import { asBool, BoolLike, ConfigValidationError, NumberLike } from '../config.ts';

/** Keys every SMS provider accepts (spec 6.2), plus the config-level timeout LinOTP passes in. */
export const commonSmsKeys = {
  MSISDN: Type.Optional(BoolLike('keep only digits (and a leading +) of the number')),
  SUPPRESS_PREFIX: Type.Optional(Type.String({ description: 'strip this prefix (e.g. "+") from the number' })),
  timeout: Type.Optional(Type.Union([NumberLike(), Type.String()], { description: 'overrides the provider Timeout' })),
  TIMEOUT: Type.Optional(Type.Union([NumberLike(), Type.String()])),
};

/** LinOTP's number pre-processing: `MSISDN` then `SUPPRESS_PREFIX`. */
export function preparePhone(phone: string, config: { MSISDN?: boolean | string; SUPPRESS_PREFIX?: string }): string {
  let out = phone;
  if (asBool(config.MSISDN)) out = (out.trim().startsWith('+') ? '+' : '') + out.replace(/\D/g, '');
  const prefix = config.SUPPRESS_PREFIX ?? '';
  if (prefix) {
    out = out.trimStart();
    if (out.startsWith(prefix)) out = out.slice(prefix.length);
  }
  return out;
}

/** The text to send: `<otp>` / `<serial>` tags filled when the message carries them. */
export function messageText(msg: OutgoingMessage): string {
  let text = msg.text;
  if (msg.otp !== undefined) text = text.replaceAll('<otp>', msg.otp);
  if (msg.serial !== undefined) text = text.replaceAll('<serial>', msg.serial);
  return text;
}

/** Reads a PEM/CA file named in a config, failing with the key's name. */
export function readConfigFile(path: string, key: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new ConfigValidationError([`config.${key}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`]);
  }
}

/** `AUTH_TYPE` / `AUTHENTICATION`: digest when it says so, else basic. */
export function authScheme(value: string | undefined): 'basic' | 'digest' {
  return value?.toLowerCase() === 'digest' ? 'digest' : 'basic';
}

/** `SERVER_CERTIFICATE`: a CA file path, or false/"false" to switch verification off. */
export function serverCertificate(value: string | boolean | undefined, key = 'SERVER_CERTIFICATE'): { ca?: Buffer; rejectUnauthorized: boolean } {
  if (value === undefined || value === '' || value === true) return { rejectUnauthorized: true };
  if (value === false || ['false', '0', 'no', 'off'].includes(value.toLowerCase())) return { rejectUnauthorized: false };
  return { ca: readConfigFile(value, key), rejectUnauthorized: true };
}

/** Compiles a configured regular expression, or fails with the key's name. */
export function compileRegex(pattern: string | undefined, key: string): RegExp | undefined {
  if (pattern === undefined || pattern === '') return undefined;
  try {
    return new RegExp(pattern);
  } catch (e) {
    throw new ConfigValidationError([`config.${key}: invalid regular expression: ${(e as Error).message}`]);
  }
}

/** `PROXY` of the HTTP providers: one URL, or one per scheme. */
export const proxySchema = Type.Union([Type.String(), Type.Object({ http: Type.Optional(Type.String()), https: Type.Optional(Type.String()) })]);
export type ProxyConfig = Static<typeof proxySchema>;

/** PROXY (a URL, or `{ http, https }` of URLs): parsed, http(s) only, hosts allowed by the provider host policy. */
export function checkProxy(proxy: ProxyConfig | undefined, ctx: ProviderContext): void {
  if (proxy === undefined || proxy === '') return;
  const entries: [string, string | undefined][] = typeof proxy === 'string' ? [['PROXY', proxy]] : Object.entries(proxy).map(([k, v]) => [`PROXY.${k}`, v]);
  for (const [key, value] of entries) {
    if (value === undefined || value === '') continue;
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      throw new ConfigValidationError([`config.${key}: not a valid URL`]);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new ConfigValidationError([`config.${key}: only http and https proxies are allowed`]);
    const refusal = ctx.hosts.refuse(parsed.hostname);
    if (refusal) throw new ConfigValidationError([`config.${key}: ${refusal}`]);
  }
}

/** A provider's gateway URL: parsed, http(s) only, host allowed by the provider host policy. */
export function gatewayUrl(raw: string, ctx: ProviderContext): URL {
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigValidationError(['config.URL: not a valid URL']);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new ConfigValidationError(['config.URL: only http and https are allowed']);
  const refusal = ctx.hosts.refuse(parsed.hostname);
  if (refusal) throw new ConfigValidationError([`config.URL: ${refusal}`]);
  return parsed;
}

/**
 * A LinOTP key kept so LinOTP configurations import, with only the value that says what otpd
 * does anyway: the other value would be stored and ignored, so it is refused with the reason.
 */
/**
 * HEADERS.Authorization next to USERNAME (or user:pw@ in the URL) would be overwritten by the
 * credentials on every request: refused, so the configuration says what is sent.
 */
export function oneCredential(headers: Record<string, string>, username: string | undefined, url: URL): void {
  if (!Object.keys(headers).some((k) => k.toLowerCase() === 'authorization')) return;
  if (username) throw new ConfigValidationError(['config.HEADERS: Authorization and USERNAME both set the credentials; keep one']);
  if (url.username) throw new ConfigValidationError(['config.HEADERS: Authorization and user:pw@ in the URL both set the credentials; keep one']);
}

export function onlyTrue(key: string, value: unknown, why: string): void {
  if (value !== undefined && value !== '' && !asBool(value, true)) throw new ConfigValidationError([`config.${key}: false is not supported: ${why}`]);
}
