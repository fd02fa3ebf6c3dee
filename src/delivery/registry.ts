import { captureEmailProvider } from './email/capture.ts';
import { smtpEmailProvider } from './email/smtp.ts';
import { captureSmsProvider } from './sms/capture.ts';
import { deviceSmsProvider } from './sms/device.ts';
import { httpSmsProvider } from './sms/http.ts';
import { restSmsProvider } from './sms/rest.ts';
import { smppSmsProvider } from './sms/smpp.ts';
import { smtpSmsProvider } from './sms/smtp.ts';
import type { ChannelType, ProviderModule } from './types.ts';
import { CENSORED, censorWithSchema, restoreNode, type Json } from '../config/secret-fields.ts';
import { ownEntry } from '../util/json.ts';

/** Every provider class otpd knows, by its short LinOTP name. */
export const providerModules: readonly ProviderModule[] = [
  httpSmsProvider,
  restSmsProvider,
  smtpSmsProvider,
  smppSmsProvider,
  deviceSmsProvider,
  smtpEmailProvider,
  captureSmsProvider,
  captureEmailProvider,
];

const byName = new Map<string, ProviderModule>();
for (const m of providerModules) {
  for (const n of [m.className, ...m.aliases]) byName.set(n.toLowerCase(), m);
}

/** LinOTP classes otpd deliberately does not offer, with the reason given to the admin. */
const UNSUPPORTED: Record<string, string> = {
  filesmsprovider: 'FileSMSProvider writes one-time codes to a file in clear and is not offered by otpd',
};

/**
 * Finds a provider class by any identifier LinOTP accepts (spec 6.1): short
 * name, `linotp.provider.smsprovider.X`, `smsprovider.X.X`, `smsprovider.X`;
 * matching is case-insensitive.
 */
export function findProviderModule(className: string): ProviderModule | undefined {
  return byName.get(className.trim().toLowerCase());
}

/** Why a class name is refused, or null when it is known (and of the right type when given). */
export function refuseClass(className: string, type?: ChannelType): string | null {
  const m = findProviderModule(className);
  if (!m) {
    const short = className.trim().split('.').at(-1)!.toLowerCase();
    return ownEntry(UNSUPPORTED, short) ?? `unknown provider class '${className}'`;
  }
  if (type && m.type !== type) return `provider class '${className}' is of type ${m.type}, not ${type}`;
  return null;
}

export { CENSORED };

/**
 * A copy of the config with every secret replaced by the placeholder: the fields the
 * class's schema marks `secret: true`, secret-named keys inside free-form maps
 * (`PARAMETER.apikey`, `HEADERS.Authorization`) and the password of a `user:pw@host` URL.
 */
export function censorConfig(module: ProviderModule, config: Record<string, unknown>): Record<string, unknown> {
  return censorWithSchema(config as Json, module.schema) as Record<string, unknown>;
}

/** Puts stored secrets back where an update sent the placeholder (at any depth); one with nothing stored is left out. */
export function restoreCensored(_module: ProviderModule, incoming: Record<string, unknown>, stored: Record<string, unknown> | undefined): Record<string, unknown> {
  return restoreNode(incoming as Json, stored as Json | undefined, '', true) as Record<string, unknown>;
}
