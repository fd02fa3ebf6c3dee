import { Type, type TSchema } from 'typebox';
import { Value } from 'typebox/value';

/**
 * The value types of runtime configuration entries (config/catalogue.ts): TypeBox schemas for
 * the few shapes a LinOTP-style config value takes, how the stored text (LinOTP stores every
 * value as a string) becomes a typed value, why a text is refused, and how a type reads in the
 * docs. Bounds and choices live in the schema (`minimum`/`maximum`, `enum`); a secret carries
 * the schema option `secret: true`.
 */

/** Longest accepted value. */
export const MAX_CONFIG_VALUE_LENGTH = 4096;

/** A whole number from `minimum` to `maximum`; stored as digits only. */
export const int = (minimum: number, maximum: number) => Type.Integer({ minimum, maximum });
/** `True`/`False` (also `1/0`, `yes/no`, `on/off`, in any case). */
export const bool = () => Type.Boolean();
/** Free text; `description` names its format in the docs (`count/seconds`). */
export const text = (description?: string) => Type.String({ maxLength: MAX_CONFIG_VALUE_LENGTH, ...(description ? { description } : {}) });
/** A secret: stored encrypted with the key file's config key, shown as the placeholder. */
export const secret = () => Type.String({ maxLength: MAX_CONFIG_VALUE_LENGTH, secret: true });
/** Exactly one of `values`. */
export const oneOf = <const T extends (string | number)[]>(values: readonly [...T]) => Type.Enum(values);
/** A comma-separated list; items are trimmed and empty items dropped; `description` names the items in the docs. */
export const list = (description?: string) => Type.Array(Type.String(), { maxItems: 256, ...(description ? { description } : {}) });

/** Whether a schema is marked `secret: true`. */
export const isSecretSchema = (schema: TSchema): boolean => (schema as { secret?: unknown }).secret === true;

const BOOL_WORDS = /^(true|false|1|0|yes|no|on|off)$/i;

/** LinOTP's reading of a boolean text: `true`, `1`, `yes`, `on` (any case); anything else is false. */
export function isTrue(value: string | undefined): boolean {
  return value !== undefined && ['true', '1', 'yes', 'on'].includes(value.trim().toLowerCase());
}

export const splitList = (value: string): string[] => value.split(',').map((s) => s.trim()).filter(Boolean);

type EnumSchema = TSchema & { enum: readonly (string | number)[] };
const isEnum = (schema: TSchema): schema is EnumSchema => Array.isArray((schema as { enum?: unknown }).enum);
/** Integers and choices of numbers: stored as digits. */
export const isNumeric = (schema: TSchema): boolean => Type.IsInteger(schema) || (isEnum(schema) && schema.enum.every((v) => typeof v === 'number'));
const orList = (values: readonly (string | number)[]): string =>
  values.length < 2 ? values.map(String).join('') : `${values.slice(0, -1).join(', ')} or ${values[values.length - 1]}`;

export type Decoded = { ok: true; value: unknown } | { ok: false; problem: string };

/** The typed value of a stored text, or why the text does not fit the schema. */
export function decode(schema: TSchema, stored: string): Decoded {
  if (stored.length > MAX_CONFIG_VALUE_LENGTH) return { ok: false, problem: `value longer than ${MAX_CONFIG_VALUE_LENGTH} characters` };
  let value: unknown = stored;
  if (isNumeric(schema)) {
    if (!/^\d+$/.test(stored)) return { ok: false, problem: 'not an integer' };
    value = Number(stored);
  } else if (Type.IsBoolean(schema)) {
    if (!BOOL_WORDS.test(stored.trim())) return { ok: false, problem: 'use True or False' };
    value = isTrue(stored);
  } else if (Type.IsArray(schema)) {
    value = splitList(stored);
  }
  if (!Value.Check(schema, value)) return { ok: false, problem: mismatch(schema) };
  return { ok: true, value };
}

function mismatch(schema: TSchema): string {
  const { minimum, maximum, maxItems } = schema as { minimum?: number; maximum?: number; maxItems?: number };
  if (Type.IsInteger(schema)) return `must be between ${minimum} and ${maximum}`;
  if (isEnum(schema)) return `use ${orList(schema.enum)}`;
  if (Type.IsArray(schema)) return `at most ${maxItems} items`;
  return 'not a valid value';
}

/** The type as the docs show it: `integer 1–100`, `True/False`, `` `sha1` or `sha256` ``, …. */
export function describeType(schema: TSchema): string {
  const { description } = schema as { description?: string };
  if (isSecretSchema(schema)) return 'secret text';
  const { minimum, maximum } = schema as { minimum?: number; maximum?: number };
  if (Type.IsInteger(schema)) return `integer ${minimum}–${maximum}`;
  if (Type.IsBoolean(schema)) return 'True/False';
  if (isEnum(schema)) return schema.enum.map((v) => `\`${v}\``).join(' or ');
  if (Type.IsArray(schema)) return description ? `comma list of ${description}` : 'comma list';
  return description ?? 'text';
}

/** A send limit: at most `max` messages per `windowMs`. */
export interface LimitSpec {
  max: number;
  windowMs: number;
}

/** Parses "count/seconds" (or "count/<n>s|m|h|d") or "count" (per hour); undefined = no limit. */
export function parseLimit(value: string): LimitSpec | undefined {
  const v = value.trim().toLowerCase();
  if (!v || v === 'off' || v === '0') return undefined;
  const m = /^(\d+)\s*(?:\/\s*(\d+)\s*(s|m|h|d)?)?$/.exec(v);
  if (!m) return undefined;
  const max = Number(m[1]);
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[(m[3] ?? 's') as 's' | 'm' | 'h' | 'd'];
  const seconds = m[2] ? Number(m[2]) * unit : 3600;
  if (max <= 0 || seconds <= 0) return undefined;
  return { max, windowMs: seconds * 1000 };
}

/** Why a send-limit text is refused, or null when it is fine. */
export function limitProblem(value: string): string | null {
  const v = value.trim().toLowerCase();
  if (!v || v === 'off' || v === '0') return null;
  return parseLimit(v) ? null : 'use "count/seconds" (e.g. 10/3600), "count" (per hour) or "off"';
}
