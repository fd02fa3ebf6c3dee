/**
 * Which fields of a JSON configuration are secrets, and the placeholder that stands for them
 * in answers. Pure and dependency-free: used by the runtime configuration (config/secrets.ts),
 * the provider registry (delivery/registry.ts), the resolver types (users/) and the log
 * redaction (services.ts). A schema marks a secret field with the option `secret: true`;
 * the name-based guess ({@link isSecretName}) is only the fallback for free-form JSON.
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

/**
 * The secret fields of a TypeBox (JSON) schema: dotted paths of every node marked with the
 * schema option `secret: true` (`Type.String({ secret: true })`), looking through unions;
 * `*` stands for any key of a free-form map or any array element. Pure: the schema is read
 * as plain JSON Schema.
 */
export function secretPaths(schema: unknown): string[] {
  const out = new Set<string>();
  const walk = (node: unknown, path: string): void => {
    for (const n of alternatives(node)) {
      if (n.secret === true && path !== '') {
        out.add(path);
        continue;
      }
      for (const [k, sub] of Object.entries(objectOf(n.properties))) walk(sub, path ? `${path}.${k}` : k);
      for (const sub of freeFormValues(n)) walk(sub, path ? `${path}.*` : '*');
    }
  };
  walk(schema, '');
  return [...out];
}

/**
 * Log redaction paths (pino `redact.paths`) for secret config paths: each path at the top
 * of a log object and one level down (`{ config: { PASSWORD } }`).
 */
export function logRedactPaths(paths: Iterable<string>): string[] {
  const out = new Set<string>();
  for (const p of paths) {
    const pinoPath = p
      .split('.')
      .map((seg, i) => (seg === '*' || /^[A-Za-z_$][\w$]*$/.test(seg) ? `${i ? '.' : ''}${seg}` : `[${JSON.stringify(seg)}]`))
      .join('');
    out.add(pinoPath);
    out.add(pinoPath.startsWith('[') ? `*${pinoPath}` : `*.${pinoPath}`);
  }
  return [...out];
}

type SchemaNode = Record<string, unknown>;

const objectOf = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

/** A schema node and every branch of its unions / intersections, flattened. */
function alternatives(node: unknown): SchemaNode[] {
  if (!node || typeof node !== 'object') return [];
  const n = node as SchemaNode;
  const branches = [n.anyOf, n.oneOf, n.allOf].flatMap((b) => (Array.isArray(b) ? b : []));
  return [n, ...branches.flatMap(alternatives)];
}

/** Schemas of a node's undescribed keys and elements: a map's values (`Type.Record`) and array items. */
function freeFormValues(n: SchemaNode): unknown[] {
  const items = Array.isArray(n.items) ? n.items : n.items ? [n.items] : [];
  const extra = n.additionalProperties && typeof n.additionalProperties === 'object' ? [n.additionalProperties] : [];
  return [...Object.values(objectOf(n.patternProperties)), ...extra, ...items];
}

/**
 * A copy of a config with its secrets replaced by the placeholder, led by its schema: a field
 * the schema marks `secret: true` is censored, any other field the schema describes is not.
 * Where the schema describes nothing (a free-form map such as HTTP `HEADERS` or
 * `PARAMETER`, `Type.Unknown()`, or no schema at all) secret-named keys are censored
 * (`Authorization`, `apikey`, …), as {@link censorNode} does. The password of a
 * `scheme://user:pw@host` URL is censored wherever it appears. Empty values stay empty.
 */
export function censorWithSchema(node: Json, schema: unknown): Json {
  return censorAt(node, alternatives(schema));
}

function censorAt(node: Json, schemas: SchemaNode[]): Json {
  if (schemas.length === 0) return censorNode(node, new Set(), false);
  if (schemas.some((s) => s.secret === true)) return node !== null && node !== '' ? CENSORED : node;
  if (Array.isArray(node)) {
    const items = schemas.flatMap((s) => (Array.isArray(s.items) ? s.items : s.items ? [s.items] : [])).flatMap(alternatives);
    return node.map((v) => censorAt(v, items));
  }
  if (typeof node === 'string') return withUrlPassword(node, () => CENSORED) ?? node;
  if (!node || typeof node !== 'object') return node;
  const out: Record<string, Json> = {};
  for (const [k, v] of Object.entries(node)) {
    const described = schemas.flatMap((s) => (Object.hasOwn(objectOf(s.properties), k) ? alternatives(objectOf(s.properties)[k]) : []));
    if (described.length > 0) out[k] = censorAt(v, described);
    else out[k] = isSecretName(k) && v !== null && v !== '' ? CENSORED : censorAt(v, schemas.flatMap(freeFormValues).flatMap(alternatives));
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
