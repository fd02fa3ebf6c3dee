import { Type, type Static, type TSchema } from 'typebox';
import { Value } from 'typebox/value';
import { secretPaths } from '../config/secret-fields.ts';
import { Errors } from '../errors.ts';
import type { ProviderDefinition, ProviderModule } from './types.ts';

/**
 * Helpers shared by the provider config schemas. LinOTP configs are JSON
 * written by hand, so booleans and numbers often arrive as strings
 * (`"START_TLS": "true"`, `"TIMEOUT": "5"`); the schemas accept both and the
 * providers read them through `asBool` / `asNumber`.
 */
export const BoolLike = (description?: string) =>
  Type.Union([Type.Boolean(), Type.String({ pattern: '^([Tt]rue|TRUE|[Ff]alse|FALSE|1|0|[Yy]es|[Nn]o|[Oo]n|[Oo]ff)$' })], { description });
export const NumberLike = (description?: string) =>
  Type.Union([Type.Number({ minimum: 0 }), Type.String({ pattern: '^\\s*\\d+(\\.\\d+)?\\s*$' })], { description });
export const StringMap = (description?: string) => Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean()]), { description });

export function asBool(v: unknown, fallback = false): boolean {
  if (v === undefined || v === null || v === '') return fallback;
  if (typeof v === 'boolean') return v;
  return ['true', '1', 'yes', 'on'].includes(String(v).trim().toLowerCase());
}

export function asNumber(v: unknown, fallback: number): number {
  if (v === undefined || v === null || v === '') return fallback;
  const n = Number(String(v).trim());
  return Number.isFinite(n) ? n : fallback;
}

export function asStringMap(v: Record<string, string | number | boolean> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(v ?? {}).map(([k, x]) => [k, String(x)]));
}

/** Thrown for a config that is not JSON or does not fit its schema; `problems` name the paths. */
export class ConfigValidationError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
    this.name = 'ConfigValidationError';
  }
}

/** The API's answer to a provider config problem: ConfigValidationError (invalid JSON with its position, schema paths) as one providerRefused (2007); anything else unchanged. */
export function providerConfigRefusal(e: unknown): unknown {
  return e instanceof ConfigValidationError ? Errors.providerRefused({ reason: `Invalid provider config: ${e.problems.join('; ')}` }) : e;
}

/**
 * Parses the `config` parameter of setProvider. Invalid JSON is refused with
 * the parser's problem and its position as line/column, plus a hint for the
 * classic mistake of single quotes (LinOTP's guide warns about it).
 */
export function parseConfigJson(text: string, path: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    const message = (e as Error).message;
    const m = /at position (\d+)/.exec(message);
    const pos = m ? Number(m[1]) : text.length;
    const before = text.slice(0, pos);
    const line = before.split('\n').length;
    const column = pos - before.lastIndexOf('\n');
    const problem = message.replace(/ in JSON at position \d+.*$/, '').replace(/^Unexpected end of JSON input$/, 'unexpected end of input');
    let hint = '';
    if (text[pos] === "'" || /'/.test(text.slice(Math.max(0, pos - 1), pos + 1))) {
      hint = ' (single quotes are not JSON: use double quotes for keys and strings)';
    }
    throw new ConfigValidationError([`${path}: invalid JSON: ${problem} at position ${pos} (line ${line}, column ${column})${hint}`]);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigValidationError([`${path}: must be a JSON object`]);
  }
  return parsed as Record<string, unknown>;
}

/** Checks a value against a schema; throws with one line per problem, each with its path. */
export function validateConfig<S extends TSchema>(schema: S, value: unknown, path: string): asserts value is Static<S> {
  if (Value.Check(schema, value)) return;
  const problems: string[] = [];
  for (const err of Value.Errors(schema, value) as Iterable<{ keyword: string; schemaPath: string; instancePath: string; params: Record<string, unknown>; message: string }>) {
    // Errors inside anyOf branches repeat the anyOf error itself: report that one only.
    if (err.schemaPath.includes('/anyOf/')) continue;
    if (err.keyword === 'boolean' && err.schemaPath.endsWith('/additionalProperties')) continue;
    const at = path + err.instancePath.replace(/\//g, '.');
    if (err.keyword === 'required') {
      for (const p of (err.params.requiredProperties as string[]) ?? []) problems.push(`${at}.${p}: required`);
    } else if (err.keyword === 'additionalProperties') {
      for (const p of (err.params.additionalProperties as string[]) ?? []) problems.push(`${at}.${p}: unknown key`);
    } else if (err.keyword === 'anyOf') {
      problems.push(`${at}: ${describeAnyOf(schema, err.instancePath)}`);
    } else {
      problems.push(`${at}: ${err.message}`);
    }
  }
  throw new ConfigValidationError(problems.length ? problems : [`${path}: invalid`]);
}

/**
 * A provider class from its definition: `create` checks the config against the schema
 * (ConfigValidationError naming `config.<key>`) and hands the definition's `create` the
 * typed config; `secretKeys` are the paths the schema marks `secret: true`.
 */
export function defineProvider<S extends TSchema>(definition: ProviderDefinition<S>): ProviderModule {
  const { create, ...meta } = definition;
  return {
    ...meta,
    secretKeys: secretPaths(definition.schema),
    create(config, ctx) {
      validateConfig(definition.schema, config, 'config');
      return create(config, ctx);
    },
  };
}

function describeAnyOf(schema: TSchema, instancePath: string): string {
  let node: any = schema;
  for (const part of instancePath.split('/').filter(Boolean)) node = node?.properties?.[part];
  const branches: any[] = node?.anyOf ?? [];
  if (branches.length && branches.every((b) => 'const' in b)) return `must be one of ${branches.map((b) => JSON.stringify(b.const)).join(', ')}`;
  const kinds = branches.map((b) => (b.type === 'string' && b.pattern ? `string matching ${b.pattern}` : b.type)).filter(Boolean);
  return kinds.length ? `must be ${kinds.join(' or ')}` : 'has the wrong type';
}

/**
 * Provider `Timeout`: seconds, or LinOTP's `"conn,read"` pair. Returns
 * milliseconds; the connect timeout never exceeds the whole timeout.
 */
export function parseTimeout(value: string | number | undefined, fallbackSeconds = 5): { connectMs: number; totalMs: number } {
  const raw = value === undefined || value === '' ? String(fallbackSeconds) : String(value);
  const parts = raw.split(',').map((p) => Number(p.trim()));
  if (parts.some((p) => !Number.isFinite(p) || p <= 0) || parts.length > 2) {
    throw new ConfigValidationError([`timeout: must be seconds or "connect,read" seconds, got ${JSON.stringify(raw)}`]);
  }
  if (parts.length === 2) {
    const connectMs = Math.round(parts[0]! * 1000);
    return { connectMs, totalMs: connectMs + Math.round(parts[1]! * 1000) };
  }
  const totalMs = Math.round(parts[0]! * 1000);
  return { connectMs: totalMs, totalMs };
}
