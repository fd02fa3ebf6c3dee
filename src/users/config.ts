import { Type, type Static, type TObject, type TSchema, type TSchemaOptions } from 'typebox';
import { Value } from 'typebox/value';
import { CENSORED, secretPaths } from '../config/secret-fields.ts';
import { Errors, type OtpdError } from '../errors.ts';
import type { ConfiguredHost, ResolverType, StoreDeps, StoredResolverConfig, UserStore } from './types.ts';

/**
 * Resolver configurations: one TypeBox schema per resolver type, and what every type
 * does the same way with it: keys matched case-insensitively and stored in the schema's
 * spelling, booleans written `True`/`False`, the schema checked, then the type's own
 * checks (filter syntax, URI schemes, JSON maps), secrets (`secret: true` in the schema)
 * sealed at rest and censored in answers.
 *
 * Values are strings, as LinOTP stores them. A key with a `default` is required in the
 * schema: the typed config a store is built from always has it, while the stored config
 * (and getResolver) leaves it out when the admin did not set it. A property may carry the
 * schema option `errorMessage`, what the admin is told when its value does not fit
 * (`expected a non-negative integer` instead of the pattern).
 */

/** LinOTP's booleans; normalize turns any spelling (`true`, `1`, `no`, …) into one of the two. */
export const TrueFalse = (options: TSchemaOptions = {}) => Type.Union([Type.Literal('True'), Type.Literal('False')], options);

/** A non-negative integer written in digits. */
export const Digits = (options: TSchemaOptions = {}) => Type.String({ pattern: '^\\d+$', errorMessage: 'expected a non-negative integer', ...options });

/** A config problem the schema cannot express, naming the key: `LDAPFILTER: must contain %s`. */
export function invalidResolverConfig(key: string, why: string): OtpdError {
  return Errors.invalidResolverConfig({ problems: `${key}: ${why}` });
}

/**
 * A configuration value that maps otpd user fields to store names (LDAP `USERINFO`,
 * SQL `Map`): a JSON object of strings, each field matching `field` and each name
 * `name.pattern`. Throws {@link invalidResolverConfig} naming the key (`Map.mobile`).
 */
export function parseFieldMap(key: string, raw: string, field: RegExp, name: { pattern: RegExp; what: string }): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw invalidResolverConfig(key, 'not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalidResolverConfig(key, 'expected a JSON object');
  const out: Record<string, string> = {};
  for (const [f, value] of Object.entries(parsed)) {
    if (!field.test(f)) throw invalidResolverConfig(`${key}.${f}`, 'not a field name');
    if (typeof value !== 'string' || !name.pattern.test(value)) throw invalidResolverConfig(`${key}.${f}`, `not ${name.what}`);
    out[f] = value;
  }
  return out;
}

/** What one resolver module declares; {@link defineResolverType} makes the registered type of it. */
export interface ResolverDefinition<S extends TObject> {
  /** LinOTP type name, e.g. `ldapresolver`. */
  type: string;
  /** LinOTP class prefix, e.g. `useridresolver.LDAPIdResolver.IdResolver`. */
  classPrefix: string;
  /** Every key with its type, format, default and description; secrets marked `secret: true`. */
  schema: S;
  /**
   * Before the schema, on the known keys (schema spelling, empty values left out): fill
   * presets, move a password out of a URL, write lists and JSON canonically. `input` is the
   * whole request by lower-case key (for keys that are not config, like `PRESET`).
   * @default the config unchanged
   */
  prepare?(config: StoredResolverConfig, input: ReadonlyMap<string, string>): StoredResolverConfig;
  /** After the schema: what it cannot express. Throws {@link invalidResolverConfig}. @default no further checks */
  check?(config: Static<S>): void;
  /** Builds the store from a config that passed the schema and `check`. */
  create(name: string, config: Static<S>, deps: StoreDeps): UserStore;
  /** Network hosts the config connects to, checked against the host policy before saving or testing. @default none */
  hosts?(config: Static<S>): ConfiguredHost[];
}

/** The registered resolver type of a definition: `normalize` for input, and every entry point checks the config first. */
export function defineResolverType<S extends TObject>(definition: ResolverDefinition<S>): ResolverType {
  const { schema, prepare, check, hosts } = definition;
  const keys = Object.keys(schema.properties);
  const booleans = keys.filter((k) => isTrueFalse(schema.properties[k]));
  /** The typed config: defaults filled in, the schema and the type's checks passed. */
  const typed = (config: StoredResolverConfig): Static<S> => {
    const withDefaults = Value.Default(schema, { ...config });
    if (!Value.Check(schema, withDefaults)) throw schemaError(schema, withDefaults);
    check?.(withDefaults);
    return withDefaults;
  };
  return {
    type: definition.type,
    classPrefix: definition.classPrefix,
    schema,
    secretKeys: secretPaths(schema),
    normalize(input) {
      const byLower = new Map(Object.entries(input).map(([k, v]) => [k.toLowerCase(), String(v)]));
      let config: StoredResolverConfig = {};
      for (const key of keys) {
        const v = byLower.get(key.toLowerCase());
        if (v !== undefined && v !== '') config[key] = v;
      }
      if (prepare) config = prepare(config, byLower);
      for (const k of booleans) if (config[k] !== undefined) config[k] = isTrue(config[k]) ? 'True' : 'False';
      typed(config);
      return config;
    },
    create: (name, config, deps) => definition.create(name, typed(config), deps),
    ...(hosts ? { hosts: (config: StoredResolverConfig) => hosts(typed(config)) } : {}),
  };
}

const isTrue = (v: string): boolean => ['true', '1', 'yes', 'on'].includes(v.trim().toLowerCase());

function isTrueFalse(schema: TSchema | undefined): boolean {
  const branches: unknown = schema && Reflect.get(schema, 'anyOf');
  return Array.isArray(branches) && branches.length === 2 && branches.every((b: { const?: unknown }) => b.const === 'True' || b.const === 'False');
}

/** A missing key is LinOTP's 905 (the first one, in schema order); anything else lists every problem with its key. */
function schemaError(schema: TObject, value: unknown): OtpdError {
  const problems: string[] = [];
  for (const err of Value.Errors(schema, value)) {
    if (err.keyword === 'required') {
      const missing = (err.params as { requiredProperties?: string[] }).requiredProperties ?? [];
      if (missing.length) return Errors.missingParameter({ name: missing[0]! });
      continue;
    }
    // errors inside a union's branches repeat the union's own error: report that one
    if (err.schemaPath.includes('/anyOf/')) continue;
    const key = err.instancePath.split('/').filter(Boolean).join('.');
    const property: TSchema | undefined = schema.properties[key.split('.')[0]!];
    const custom: unknown = property && Reflect.get(property, 'errorMessage');
    const why = typeof custom === 'string' ? custom : err.message;
    problems.push(`${key || '(config)'}: ${why}`);
  }
  return Errors.invalidResolverConfig({ problems: problems.join('; ') || 'invalid' });
}

// ---------------------------------------------------------------- secrets

/** The stored form: secret values encrypted (`encrypt`), the rest as they are. */
export function sealSecrets(type: ResolverType, config: StoredResolverConfig, encrypt: (plain: string) => string): StoredResolverConfig {
  return mapSecrets(type, config, encrypt);
}

/** The config in clear from its stored form. */
export function unsealSecrets(type: ResolverType, stored: StoredResolverConfig, decrypt: (sealed: string) => string): StoredResolverConfig {
  return mapSecrets(type, stored, decrypt);
}

/** What getResolver shows: every non-empty secret as the placeholder. */
export function censorSecrets(type: ResolverType, config: StoredResolverConfig): StoredResolverConfig {
  return mapSecrets(type, config, () => CENSORED);
}

function mapSecrets(type: ResolverType, config: StoredResolverConfig, f: (v: string) => string): StoredResolverConfig {
  const out = { ...config };
  for (const k of type.secretKeys) if (out[k]) out[k] = f(out[k]);
  return out;
}

/**
 * Request parameters with every placeholder sent for a secret replaced by the stored value
 * (`stored`, in clear), secret keys in the schema's spelling. `missing` decides what a
 * placeholder with nothing stored becomes (throw to refuse it).
 */
export function restoreSecrets(
  type: ResolverType,
  params: Record<string, string>,
  stored: StoredResolverConfig | undefined,
  missing: (key: string) => string,
): StoredResolverConfig {
  const out: StoredResolverConfig = {};
  for (const [k, v] of Object.entries(params)) {
    const secret = type.secretKeys.find((s) => s.toLowerCase() === k.toLowerCase());
    if (secret === undefined) out[k] = v;
    else out[secret] = v === CENSORED ? stored?.[secret] || missing(secret) : v;
  }
  return out;
}
