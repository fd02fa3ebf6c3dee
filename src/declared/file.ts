/**
 * The declarative configuration file of `otpd config apply` / `export` (docs/config-as-code.md):
 * its schema, parsing (YAML or JSON), and the secret references `{env: NAME}` / `{file: PATH}`.
 * Pure apart from reading the environment and referenced files, which come in as parameters.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Type, type Static, type TSchema } from 'typebox';
import { Value } from 'typebox/value';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { Errors, type OtpdError } from '../errors.ts';

/** A secret (or any value) taken from an environment variable or a file instead of the file itself. */
export type SecretRef = { env: string } | { file: string };

const Ref = Type.Union([
  Type.Object({ env: Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }) }, { additionalProperties: false }),
  Type.Object({ file: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
]);
/** A scalar setting: strings as otpd stores them; numbers and booleans are written as text. */
const Scalar = Type.Union([Type.String(), Type.Number(), Type.Boolean(), Ref]);
const Named = <S extends TSchema>(schema: S) => Type.Record(Type.String(), schema);

const ResolverSchema = Type.Object(
  { type: Type.String({ minLength: 1 }), config: Named(Scalar) },
  { additionalProperties: false },
);
const RealmSchema = Type.Object(
  { resolvers: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }), default: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
);
const ProviderSchema = Type.Object(
  {
    class: Type.String({ minLength: 1 }),
    /** Seconds, or LinOTP's "connect,read". @default "5" */
    timeout: Type.Optional(Type.Union([Type.String(), Type.Number()])),
    default: Type.Optional(Type.Boolean()),
    /** The provider's JSON config; references may stand for any value in it. */
    config: Type.Record(Type.String(), Type.Unknown()),
  },
  { additionalProperties: false },
);
const PolicySchema = Type.Object(
  {
    scope: Type.String({ minLength: 1 }),
    action: Type.String({ minLength: 1 }),
    realm: Type.String(),
    user: Type.Optional(Type.String()),
    client: Type.Optional(Type.String()),
    time: Type.Optional(Type.String()),
    /** @default true */
    active: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
const RadiusClientSchema = Type.Object(
  {
    address: Type.String({ minLength: 1 }),
    secret: Type.Union([Type.String(), Ref]),
    realm: Type.Optional(Type.String()),
    /** @default true */
    require_message_authenticator: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

/** The file: every section optional; a section that is present is what `--prune` makes exact. */
export const DeclaredFileSchema = Type.Object(
  {
    version: Type.Optional(Type.Literal(1)),
    config: Type.Optional(Named(Scalar)),
    resolvers: Type.Optional(Named(ResolverSchema)),
    realms: Type.Optional(Named(RealmSchema)),
    providers: Type.Optional(Type.Object({ sms: Type.Optional(Named(ProviderSchema)), email: Type.Optional(Named(ProviderSchema)) }, { additionalProperties: false })),
    policies: Type.Optional(Named(PolicySchema)),
    radius_clients: Type.Optional(Named(RadiusClientSchema)),
  },
  { additionalProperties: false },
);

export type DeclaredFile = Static<typeof DeclaredFileSchema>;
export type DeclaredProvider = Static<typeof ProviderSchema>;
export type DeclaredPolicy = Static<typeof PolicySchema>;
export type DeclaredRadiusClient = Static<typeof RadiusClientSchema>;
export type Scalar = Static<typeof Scalar>;

/** The sections of a file, in the order they are applied. */
export const SECTIONS = ['config', 'resolvers', 'realms', 'providers', 'policies', 'radius_clients'] as const;
export type Section = (typeof SECTIONS)[number];

export function isRef(v: unknown): v is SecretRef {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return false;
  const keys = Object.keys(v);
  return keys.length === 1 && (keys[0] === 'env' || keys[0] === 'file') && typeof (v as Record<string, unknown>)[keys[0]] === 'string';
}

/** Where references are read from: the environment and files relative to the config file's folder. */
export interface RefSource {
  env: NodeJS.ProcessEnv;
  /** Folder of the config file: relative `file:` paths start here. */
  baseDir: string;
  /** @default readFileSync (utf8) */
  readFile?: (path: string) => string;
}

/**
 * A file's problems, collected so one answer lists them all; {@link throwIfAny} makes one
 * `invalidConfigFile` (2707) of them.
 */
export class Problems {
  readonly list: string[] = [];
  constructor(readonly file: string) {}
  add(path: string, why: string): void {
    this.list.push(`${path}: ${why}`);
  }
  throwIfAny(): void {
    if (this.list.length > 0) throw this.error();
  }
  error(): OtpdError {
    return Errors.invalidConfigFile({ file: this.file, problems: this.list.join('; ') });
  }
}

/**
 * The value a reference stands for: the variable's value, or the file's text without one
 * trailing newline (as secret files are usually written). undefined (and a problem) when it
 * cannot be read; the problem never carries the value.
 */
export function resolveRef(ref: SecretRef, path: string, source: RefSource, problems: Problems): string | undefined {
  if ('env' in ref) {
    const v = source.env[ref.env];
    if (v === undefined) problems.add(path, `environment variable ${ref.env} is not set`);
    return v;
  }
  const file = resolve(source.baseDir, ref.file);
  try {
    return (source.readFile ?? ((p) => readFileSync(p, 'utf8')))(file).replace(/\r?\n$/, '');
  } catch (e) {
    problems.add(path, `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    return undefined;
  }
}

/** Resolves every reference anywhere in a JSON value (provider configs). */
export function resolveRefsDeep(node: unknown, path: string, source: RefSource, problems: Problems): unknown {
  if (isRef(node)) return resolveRef(node, path, source, problems) ?? '';
  if (Array.isArray(node)) return node.map((v, i) => resolveRefsDeep(v, `${path}[${i}]`, source, problems));
  if (node && typeof node === 'object') {
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, resolveRefsDeep(v, `${path}.${k}`, source, problems)]));
  }
  return node;
}

/** A scalar as otpd stores it: text (booleans `True`/`False` as LinOTP writes them), a reference resolved. */
export function scalarText(v: Scalar, path: string, source: RefSource, problems: Problems): string {
  if (isRef(v)) return resolveRef(v, path, source, problems) ?? '';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  return String(v);
}

/** Whether the file is JSON (by its name); anything else is read as YAML. */
export const isJsonName = (name: string): boolean => /\.json$/i.test(name);

/**
 * Parses and checks a file against the schema. Every problem is reported with its path
 * (`resolvers.corp.type: required`) in one `invalidConfigFile` (2707).
 */
export function parseDeclaredFile(text: string, name: string): DeclaredFile {
  const problems = new Problems(name);
  let data: unknown;
  try {
    data = isJsonName(name) ? JSON.parse(text) : parseYaml(text, { uniqueKeys: true, maxAliasCount: 100 });
  } catch (e) {
    problems.add('(file)', `not valid ${isJsonName(name) ? 'JSON' : 'YAML'}: ${(e as Error).message.split('\n')[0]}`);
    problems.throwIfAny();
  }
  if (data === null || data === undefined) data = {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    problems.add('(file)', 'must hold a mapping of sections (config, resolvers, realms, providers, policies, radius_clients)');
    problems.throwIfAny();
  }
  for (const err of Value.Errors(DeclaredFileSchema, data)) {
    // a union's branches repeat the union's own error: report that one
    if (err.schemaPath.includes('/anyOf/')) continue;
    const at = err.instancePath.split('/').filter(Boolean).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~')).join('.') || '(file)';
    if (err.keyword === 'required') {
      for (const p of (err.params as { requiredProperties?: string[] }).requiredProperties ?? []) problems.add(at === '(file)' ? p : `${at}.${p}`, 'required');
    } else if (err.keyword === 'additionalProperties') {
      for (const p of (err.params as { additionalProperties?: string[] }).additionalProperties ?? []) problems.add(at === '(file)' ? p : `${at}.${p}`, 'unknown key');
    } else if (err.keyword === 'anyOf') {
      problems.add(at, 'must be a string, a number, true/false or a reference {env: NAME} / {file: PATH}');
    } else if (err.keyword !== 'boolean') {
      problems.add(at, err.message);
    }
  }
  problems.throwIfAny();
  return data as DeclaredFile;
}

/** Reads a file from disk and parses it; the reference source reads relative paths from its folder. */
export function readDeclaredFile(path: string, env: NodeJS.ProcessEnv = process.env): { file: DeclaredFile; source: RefSource } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw Errors.invalidConfigFile({ file: path, problems: `cannot read it: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` });
  }
  return { file: parseDeclaredFile(text, path), source: { env, baseDir: dirname(resolve(path)) } };
}

/** The text of an exported file: YAML (long lines kept whole) or JSON, with a header comment in YAML. */
export function formatDeclaredFile(file: DeclaredFile, format: 'yaml' | 'json'): string {
  if (format === 'json') return `${JSON.stringify(file, null, 2)}\n`;
  return [
    '# otpd configuration (otpd config export); apply with: otpd config apply FILE',
    '# Secrets are references: set each {env: NAME} variable (or use {file: PATH}) before applying.',
    stringifyYaml(file, { lineWidth: 0, sortMapEntries: false }),
  ].join('\n');
}
