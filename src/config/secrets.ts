import { findProviderModule, providerModules } from '../delivery/registry.ts';
import { catalogueSecret, lookup, namesSecret } from './catalogue.ts';
import { CENSORED, PlaceholderWithoutSecretError, censorNode, isSecretName, parseObject, restoreNode, sameJson, type Json } from './secret-fields.ts';
import { isSecretSchema } from './values.ts';

export { CENSORED, PlaceholderWithoutSecretError, isSecretName };

/**
 * LinOTP's legacy provider configuration keys (a JSON object per key) and the key naming
 * the provider class whose secret fields they hold. They are secrets in the catalogue, so their
 * whole value is stored encrypted; answers show the JSON with only the secret fields censored.
 */
export const LEGACY_PROVIDER_CONFIG: Readonly<Record<string, string | undefined>> = {
  SMSProviderConfig: 'SMSProvider',
  EmailProviderConfig: 'EmailProvider',
  PushProviderConfig: 'PushProvider',
  VoiceProviderConfig: 'VoiceProvider',
};

/**
 * Config keys whose value is a secret: for a key the catalogue knows by name its `secret` flag
 * (the legacy provider JSON); for any other key (one matched by a family, or unknown) its name,
 * when any dotted segment names a secret (`smtp.password`, `ldapresolver.BINDPW.corp`).
 */
export function isSecretKey(key: string): boolean {
  const known = catalogueSecret(key);
  if (known !== undefined) return known;
  const family = lookup(key);
  return (family !== undefined && isSecretSchema(family.type)) || namesSecret(key);
}

/** Whether an entry is stored encrypted: `type=password` or a secret key. */
export function isEncryptedEntry(key: string, type: string): boolean {
  return type === 'password' || isSecretKey(key);
}

/** Whether the whole value is shown as the placeholder (the legacy JSON shows its non-secret fields). */
export function isCensoredWhole(key: string, type: string): boolean {
  return type === 'password' || (isSecretKey(key) && !Object.hasOwn(LEGACY_PROVIDER_CONFIG, key));
}

/**
 * The secret top-level field names of a legacy provider JSON: the class's declared
 * `secretKeys` (every class's when the class is not set or not known).
 */
function declaredSecretKeys(className: string | undefined): Set<string> {
  const module = className ? findProviderModule(className) : undefined;
  return new Set(module ? module.secretKeys : providerModules.flatMap((m) => m.secretKeys));
}

/**
 * A legacy provider JSON with its secret fields replaced by the placeholder, at any depth
 * (`PASSWORD`, `PARAMETER.apikey`, `HEADERS.Authorization`); a value that is not a JSON
 * object cannot be told apart and is censored whole.
 */
export function censorLegacyJson(value: string, className: string | undefined): string {
  const parsed = parseObject(value);
  if (!parsed) return value === '' ? '' : CENSORED;
  return JSON.stringify(censorNode(parsed, declaredSecretKeys(className)));
}

/**
 * The value to store for a legacy provider JSON sent back by a client: every placeholder
 * (at any depth) replaced by the stored field at the same path. `unchanged` when the result
 * equals what is stored, so the caller can keep the stored ciphertext as it is.
 * Throws PlaceholderWithoutSecretError when a placeholder has nothing stored behind it.
 */
export function restoreLegacyJson(key: string, incoming: string, storedPlain: string | undefined): { value: string; unchanged: boolean } {
  const parsed = parseObject(incoming);
  if (!parsed || !incoming.includes(CENSORED)) return { value: incoming, unchanged: incoming === storedPlain };
  const stored = storedPlain === undefined ? undefined : parseObject(storedPlain);
  const restored = restoreNode(parsed, stored, key) as Record<string, Json>;
  const unchanged = stored !== undefined && sameJson(restored, stored);
  return { value: unchanged ? storedPlain! : JSON.stringify(restored), unchanged };
}

