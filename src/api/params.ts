import { Errors } from '../errors.ts';

/** Request parameters: query + form, or the JSON object body (spec 1.1). Lists for `key[]`. */
export class Params {
  constructor(private readonly values: Map<string, string | string[]>) {}

  static readonly MAX_VALUE = 8192;
  /** Parameters that carry a whole file (`/system/importPolicy`'s policy file): up to the body limit. */
  static readonly FILE_KEYS: ReadonlySet<string> = new Set(['file']);
  static readonly MAX_FILE_VALUE = 256 * 1024;
  static readonly MAX_KEYS = 200;

  /**
   * Merges query and body. Every value must be a string (or a list of strings for
   * `key[]`), without NUL, at most MAX_VALUE characters.
   */
  static from(query: unknown, body: unknown): Params {
    const values = new Map<string, string | string[]>();
    const add = (source: unknown) => {
      if (source === undefined || source === null || source === '') return;
      if (typeof source !== 'object' || Array.isArray(source)) throw Errors.bodyNotAnObject();
      for (const [rawKey, rawValue] of Object.entries(source as Record<string, unknown>)) {
        if (values.size >= Params.MAX_KEYS) throw Errors.tooManyParameters({ max: Params.MAX_KEYS });
        if (!/^[A-Za-z0-9_.:-]{1,128}(\[\])?$/.test(rawKey)) throw Errors.invalidParameterName({ name: printable(rawKey) });
        const isList = rawKey.endsWith('[]');
        const key = isList ? rawKey.slice(0, -2) : rawKey;
        const list = Array.isArray(rawValue) ? rawValue : [rawValue];
        const strings = list.map((v) => scalar(key, v, Params.FILE_KEYS.has(key) ? Params.MAX_FILE_VALUE : Params.MAX_VALUE));
        if (isList) values.set(key, strings);
        else values.set(key, strings.length === 1 ? strings[0] : strings);
      }
    };
    add(query);
    add(body);
    return new Params(values);
  }

  has(key: string): boolean {
    return this.values.has(key);
  }

  /** A single string value (the last one when several were sent). */
  get(key: string): string | undefined {
    const v = this.values.get(key);
    return Array.isArray(v) ? v[v.length - 1] : v;
  }

  require(key: string): string {
    const v = this.get(key);
    if (v === undefined) throw Errors.missingParameter({ name: key });
    return v;
  }

  /** A list: `key[]` values, or a comma separated single value. */
  list(key: string): string[] {
    const v = this.values.get(key);
    if (v === undefined) return [];
    const items = Array.isArray(v) ? v : v.split(',');
    return items.map((s) => s.trim()).filter((s) => s !== '');
  }

  int(key: string, fallback: number, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.get(key);
    if (v === undefined || v === '') return fallback;
    if (!/^-?\d+$/.test(v.trim())) throw Errors.invalidParameter({ name: key, why: 'not an integer' });
    const n = Number(v);
    if (n < min || n > max) throw Errors.invalidParameter({ name: key, why: `must be between ${min} and ${max}` });
    return n;
  }

  bool(key: string, fallback = false): boolean {
    const v = this.get(key);
    if (v === undefined || v === '') return fallback;
    return ['1', 'true', 'yes', 'on'].includes(v.trim().toLowerCase());
  }

  keys(): string[] {
    return [...this.values.keys()];
  }

  /** Case-insensitive lookup (for /admin/set's parameter names). */
  getCaseInsensitive(key: string): string | undefined {
    const k = this.keys().find((x) => x.toLowerCase() === key.toLowerCase());
    return k === undefined ? undefined : this.get(k);
  }
}

function scalar(key: string, v: unknown, max: number): string {
  let s: string;
  if (typeof v === 'string') s = v;
  else if (typeof v === 'number' || typeof v === 'boolean') s = String(v);
  else if (v === null) s = '';
  else throw Errors.invalidParameter({ name: key, why: 'must be a string' });
  if (s.length > max) throw Errors.invalidParameter({ name: key, why: `longer than ${max} characters` });
  if (s.includes('\0')) throw Errors.invalidParameter({ name: key, why: 'contains a NUL character' });
  // eslint-disable-next-line no-control-regex
  if (/[\u0001-\u0008\u000b\u000c\u000e-\u001f\u007f\ufffd]/.test(s)) throw Errors.invalidParameter({ name: key, why: 'contains control characters or invalid UTF-8' });
  return s;
}

function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?').slice(0, 40);
}
