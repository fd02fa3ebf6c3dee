/**
 * Which fields of a JSON configuration are secrets, and the placeholder that stands for them
 * in answers. Pure and dependency-free: used by the runtime configuration (config/secrets.ts)
 * and the provider registry (delivery/registry.ts) alike.
 */

/** The placeholder that stands for a secret in API answers; sent back unchanged it keeps the stored value. */
export const CENSORED = '__CENSORED__';

const DROPPED = Symbol('dropped');

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

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export function parseObject(value: string): Record<string, Json> | undefined {
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

/**
 * A copy with secrets replaced by the placeholder: top-level keys in `declared` (a provider
 * class's `secretKeys`) and, at any depth, secret-named keys and the password of
 * `scheme://user:pw@host` URLs. Empty values stay empty.
 */
export function censorNode(node: Json, declared: Set<string>, topLevel = true): Json {
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

/** A placeholder was sent where nothing is stored: refusing beats storing the placeholder as the secret. */
export class PlaceholderWithoutSecretError extends Error {
  constructor(readonly path: string) {
    super(`'${CENSORED}' stands for a stored secret, but none is stored at ${path}`);
    this.name = 'PlaceholderWithoutSecretError';
  }
}

/**
 * `incoming` with every placeholder replaced by the stored value at the same path (also a
 * URL's censored password). A placeholder with nothing stored behind it throws
 * PlaceholderWithoutSecretError, or with `drop` is left out (an object key removed, a URL
 * password emptied).
 */
export function restoreNode(incoming: Json, stored: Json | undefined, path: string, drop = false): Json {
  if (incoming === CENSORED) {
    if (stored === undefined || stored === CENSORED) {
      if (drop) return DROPPED as unknown as Json;
      throw new PlaceholderWithoutSecretError(path);
    }
    return stored;
  }
  if (typeof incoming === 'string' && incoming.includes(CENSORED)) {
    // a URL whose password was shown censored: the stored URL's password at the same path
    if (typeof stored === 'string' && withUrlPassword(stored, () => CENSORED) === incoming) return stored;
    let storedPassword: string | undefined;
    if (typeof stored === 'string') withUrlPassword(stored, (pw) => (storedPassword = pw));
    const restored = withUrlPassword(incoming, (pw) => {
      if (pw !== CENSORED) return pw;
      if (!storedPassword) {
        if (drop) return '';
        throw new PlaceholderWithoutSecretError(path);
      }
      return storedPassword;
    });
    return restored ?? incoming;
  }
  if (Array.isArray(incoming)) {
    const s = Array.isArray(stored) ? stored : [];
    return incoming.map((v, i) => {
      const r = restoreNode(v, s[i], `${path}[${i}]`, drop);
      return r === (DROPPED as unknown as Json) ? '' : r;
    });
  }
  if (!incoming || typeof incoming !== 'object') return incoming;
  const s = stored && typeof stored === 'object' && !Array.isArray(stored) ? stored : {};
  const out: Record<string, Json> = {};
  for (const [k, v] of Object.entries(incoming)) {
    const r = restoreNode(v, s[k], path ? `${path}.${k}` : k, drop);
    if (r !== (DROPPED as unknown as Json)) out[k] = r;
  }
  return out;
}

export function sameJson(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => sameJson(v, b[i]!));
  }
  if (!a || !b || typeof a !== 'object' || typeof b !== 'object') return false;
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => k in b && sameJson(a[k]!, b[k]!));
}
