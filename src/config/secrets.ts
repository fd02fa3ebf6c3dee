import { CENSORED, findProviderModule, providerModules } from '../delivery/registry.ts';

export { CENSORED };

/**
 * LinOTP's legacy provider configuration keys (a JSON object per key) and the key naming
 * the provider class whose secret fields they hold. Their whole value is stored encrypted;
 * answers show the JSON with only the secret fields censored.
 */
export const LEGACY_PROVIDER_CONFIG: Readonly<Record<string, string | undefined>> = {
  SMSProviderConfig: 'SMSProvider',
  EmailProviderConfig: 'EmailProvider',
  PushProviderConfig: 'PushProvider',
  VoiceProviderConfig: 'VoiceProvider',
};

/**
 * Name endings that mark a secret (compared lower-case with `_`, `-` and spaces removed):
 * `SMTP_PASSWORD`, `ldapresolver.BINDPW.x`, `client_secret`, `X-Api-Key`, `Authorization`, ….
 * Whole-word only for the short ones, so `PassOnUserNoToken` is not a secret.
 */
const SECRET_ENDINGS = [
  'password', 'passwd', 'passphrase', 'secret', 'apikey', 'accesskey', 'secretkey', 'privatekey', 'bindpw',
  'authtoken', 'accesstoken', 'apitoken', 'bearertoken', 'refreshtoken', 'credential', 'credentials', 'authorization',
];
const SECRET_WORDS = new Set(['pw', 'pwd', 'pass', 'token']);

/** True when a name (one key, or one segment of a dotted config key) names a secret. */
export function isSecretName(name: string): boolean {
  const n = name.toLowerCase().replace(/[\s_-]/g, '');
  return SECRET_WORDS.has(n) || SECRET_ENDINGS.some((e) => n.endsWith(e));
}

/** Config keys whose value is a secret by name: any dotted segment names one (`smtp.password`, `ldapresolver.BINDPW.corp`). */
export function isSecretKey(key: string): boolean {
  return key.split(/[.:]/).some(isSecretName);
}

/** Whether an entry is stored encrypted: `type=password`, a secret-named key, or a legacy provider JSON. */
export function isEncryptedEntry(key: string, type: string): boolean {
  return type === 'password' || isSecretKey(key) || key in LEGACY_PROVIDER_CONFIG;
}

/** Whether the whole value is shown as the placeholder (the legacy JSON shows its non-secret fields). */
export function isCensoredWhole(key: string, type: string): boolean {
  return type === 'password' || isSecretKey(key);
}

/**
 * The secret top-level field names of a legacy provider JSON: the class's declared
 * `secretKeys` (every class's when the class is not set or not known).
 */
function declaredSecretKeys(className: string | undefined): Set<string> {
  const module = className ? findProviderModule(className) : undefined;
  return new Set(module ? module.secretKeys : providerModules.flatMap((m) => m.secretKeys));
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function parseObject(value: string): Record<string, Json> | undefined {
  try {
    const parsed = JSON.parse(value) as Json;
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** `http://user:pw@host/…` → the URL with its password replaced, when it has one. */
function withUrlPassword(value: string, password: (current: string) => string): string | undefined {
  if (!/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(value)) return undefined;
  try {
    const url = new URL(value);
    if (!url.password) return undefined;
    url.password = password(url.password);
    return url.toString();
  } catch {
    return undefined;
  }
}

function censorNode(node: Json, declared: Set<string>, topLevel: boolean): Json {
  if (Array.isArray(node)) return node.map((v) => censorNode(v, declared, false));
  if (typeof node === 'string') return withUrlPassword(node, () => CENSORED) ?? node;
  if (!node || typeof node !== 'object') return node;
  const out: Record<string, Json> = {};
  for (const [k, v] of Object.entries(node)) {
    const secret = (topLevel && declared.has(k)) || isSecretName(k);
    out[k] = secret && v !== null && v !== '' ? CENSORED : censorNode(v, declared, false);
  }
  return out;
}

/**
 * A legacy provider JSON with its secret fields replaced by the placeholder, at any depth
 * (`PASSWORD`, `PARAMETER.apikey`, `HEADERS.Authorization`); a value that is not a JSON
 * object cannot be told apart and is censored whole.
 */
export function censorLegacyJson(value: string, className: string | undefined): string {
  const parsed = parseObject(value);
  if (!parsed) return value === '' ? '' : CENSORED;
  return JSON.stringify(censorNode(parsed, declaredSecretKeys(className), true));
}

/** A placeholder was sent where nothing is stored: refusing beats storing the placeholder as the secret. */
export class PlaceholderWithoutSecretError extends Error {
  constructor(readonly path: string) {
    super(`'${CENSORED}' stands for a stored secret, but none is stored at ${path}`);
    this.name = 'PlaceholderWithoutSecretError';
  }
}

function restoreNode(incoming: Json, stored: Json | undefined, path: string): Json {
  if (incoming === CENSORED) {
    if (stored === undefined || stored === CENSORED) throw new PlaceholderWithoutSecretError(path);
    return stored;
  }
  if (typeof incoming === 'string' && incoming.includes(CENSORED)) {
    // a URL whose password was shown censored: the stored URL's password at the same path
    if (typeof stored === 'string' && withUrlPassword(stored, () => CENSORED) === incoming) return stored;
    let storedPassword: string | undefined;
    if (typeof stored === 'string') withUrlPassword(stored, (pw) => (storedPassword = pw));
    const restored = withUrlPassword(incoming, (pw) => {
      if (pw !== CENSORED) return pw;
      if (!storedPassword) throw new PlaceholderWithoutSecretError(path);
      return storedPassword;
    });
    return restored ?? incoming;
  }
  if (Array.isArray(incoming)) {
    const s = Array.isArray(stored) ? stored : [];
    return incoming.map((v, i) => restoreNode(v, s[i], `${path}[${i}]`));
  }
  if (!incoming || typeof incoming !== 'object') return incoming;
  const s = stored && typeof stored === 'object' && !Array.isArray(stored) ? stored : {};
  const out: Record<string, Json> = {};
  for (const [k, v] of Object.entries(incoming)) out[k] = restoreNode(v, s[k], path ? `${path}.${k}` : k);
  return out;
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

function sameJson(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => sameJson(v, b[i]!));
  }
  if (!a || !b || typeof a !== 'object' || typeof b !== 'object') return false;
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => k in b && sameJson(a[k]!, b[k]!));
}
