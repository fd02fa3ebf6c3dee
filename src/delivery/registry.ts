import { smtpEmailProvider } from './email/smtp.ts';
import { deviceSmsProvider } from './sms/device.ts';
import { httpSmsProvider } from './sms/http.ts';
import { restSmsProvider } from './sms/rest.ts';
import { smppSmsProvider } from './sms/smpp.ts';
import { smtpSmsProvider } from './sms/smtp.ts';
import type { ChannelType, ProviderModule } from './types.ts';

/** Every provider class otpd knows, by its short LinOTP name. */
export const providerModules: readonly ProviderModule[] = [
  httpSmsProvider,
  restSmsProvider,
  smtpSmsProvider,
  smppSmsProvider,
  deviceSmsProvider,
  smtpEmailProvider,
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
    return UNSUPPORTED[short] ?? `unknown provider class '${className}'`;
  }
  if (type && m.type !== type) return `provider class '${className}' is of type ${m.type}, not ${type}`;
  return null;
}

/** The placeholder that stands for a secret in API answers; sent back unchanged it keeps the stored value. */
export const CENSORED = '__CENSORED__';

/** A copy of the config with every secret key replaced by the placeholder. */
export function censorConfig(module: ProviderModule, config: Record<string, unknown>): Record<string, unknown> {
  const out = { ...config };
  for (const k of module.secretKeys) if (out[k] !== undefined && out[k] !== '') out[k] = CENSORED;
  return out;
}

/** Puts stored secrets back where an update sent the placeholder. */
export function restoreCensored(module: ProviderModule, incoming: Record<string, unknown>, stored: Record<string, unknown> | undefined): Record<string, unknown> {
  const out = { ...incoming };
  for (const k of module.secretKeys) {
    if (out[k] === CENSORED) {
      if (stored && stored[k] !== undefined) out[k] = stored[k];
      else delete out[k];
    }
  }
  return out;
}
