/**
 * LinOTP's policy time conditions (spec 3.3): `;`-separated entries of six
 * cron fields `minute hour day-of-month month day-of-week year`, each entry
 * optionally prefixed with `!` or `-` to exclude that time. Evaluated in the
 * process' local time zone (as LinOTP does).
 */

export interface TimeParts {
  minute: number;
  hour: number;
  dom: number;
  month: number;
  /** 0 = Sunday, 1 = Monday, … 6 = Saturday */
  dow: number;
  year: number;
}

let cachedMinute = Number.NaN;
let cachedParts: TimeParts | undefined;

/** Local calendar fields of `ms`; constant within a minute, so the last one is kept. */
export function localTimeParts(ms: number): TimeParts {
  const minute = Math.floor(ms / 60_000);
  if (minute === cachedMinute && cachedParts) return cachedParts;
  const d = new Date(ms);
  cachedMinute = minute;
  return (cachedParts = {
    minute: d.getMinutes(),
    hour: d.getHours(),
    dom: d.getDate(),
    month: d.getMonth() + 1,
    dow: d.getDay(),
    year: d.getFullYear(),
  });
}

type FieldName = keyof TimeParts;

const FIELDS: { name: FieldName; min: number; max: number; names?: readonly string[] }[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'dom', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'] },
  { name: 'dow', min: 0, max: 7, names: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] },
  { name: 'year', min: 1970, max: 2999 },
];

/** One cron field as ranges; `step` counts from 0 for `*` (LinOTP: value % step == 0). */
interface Range {
  lo: number;
  hi: number;
  step: number;
  /** `*\/n`: divisible by n, as LinOTP; `a-b/n`: a, a+n, … */
  fromZero: boolean;
}

export interface CronEntry {
  raw: string;
  negative: boolean;
  /** one list of ranges per field; empty list = `*` */
  fields: Range[][];
}

export interface TimeCondition {
  /** the normalised text, `* * * * * *;` when empty */
  raw: string;
  always: boolean;
  entries: CronEntry[];
}

export class CronError extends Error {}

function parseNumber(text: string, field: (typeof FIELDS)[number]): number {
  const lower = text.toLowerCase();
  if (field.names) {
    const i = field.names.indexOf(lower);
    if (i >= 0) return field.name === 'month' ? i + 1 : i;
  }
  if (!/^\d+$/.test(text)) throw new CronError(`'${text}' is not a number in the ${field.name} field`);
  const n = Number(text);
  if (n < field.min || n > field.max) {
    throw new CronError(`${field.name} ${n} is out of range ${field.min}..${field.max}`);
  }
  return n;
}

function parseField(text: string, field: (typeof FIELDS)[number]): Range[] {
  if (text === '*') return [];
  const ranges: Range[] = [];
  for (const part of text.split(',')) {
    if (part === '') throw new CronError(`empty item in the ${field.name} field '${text}'`);
    const [body, stepText] = part.split('/');
    if (part.split('/').length > 2) throw new CronError(`'${part}' has more than one '/'`);
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText) || Number(stepText) === 0) throw new CronError(`bad step '/${stepText}' in '${part}'`);
      step = Number(stepText);
    }
    if (body === '*') {
      ranges.push({ lo: field.min, hi: field.max, step, fromZero: true });
      continue;
    }
    const dash = body.indexOf('-', 1);
    let lo: number;
    let hi: number;
    if (dash > 0) {
      lo = parseNumber(body.slice(0, dash), field);
      hi = parseNumber(body.slice(dash + 1), field);
      if (hi < lo && !(field.name === 'dow' && hi === 0)) throw new CronError(`range '${body}' runs backwards`);
      if (field.name === 'dow' && hi === 0) hi = 7; // mon-sun
    } else {
      lo = hi = parseNumber(body, field);
      if (stepText !== undefined) hi = field.max;
    }
    ranges.push({ lo, hi, step, fromZero: false });
  }
  return ranges;
}

function fieldMatches(ranges: Range[], value: number, isDow: boolean): boolean {
  if (ranges.length === 0) return true;
  for (const r of ranges) {
    if (hit(r, value)) return true;
    if (isDow && value === 0 && hit(r, 7)) return true; // 7 = Sunday too
  }
  return false;
}

function hit(r: Range, value: number): boolean {
  if (value < r.lo || value > r.hi) return false;
  return r.fromZero ? value % r.step === 0 : (value - r.lo) % r.step === 0;
}

/** Compiles a time condition; throws CronError with a readable reason. */
export function compileTime(text: string): TimeCondition {
  const entries: CronEntry[] = [];
  let always = false;
  for (const piece of text.split(';')) {
    let entry = piece.trim();
    if (entry === '') continue;
    let negative = false;
    if (entry.startsWith('!') || entry.startsWith('-')) {
      negative = true;
      entry = entry.slice(1).trim();
    }
    if (entry === '*') entry = '* * * * * *';
    const parts = entry.split(/\s+/);
    if (parts.length !== 6) {
      throw new CronError(`'${piece.trim()}' has ${parts.length} fields; a time entry has 6: minute hour day-of-month month day-of-week year`);
    }
    const fields = parts.map((p, i) => parseField(p, FIELDS[i]));
    if (!negative && fields.every((f) => f.length === 0)) always = true;
    entries.push({ raw: piece.trim(), negative, fields });
  }
  if (entries.length === 0) return { raw: '* * * * * *;', always: true, entries: [{ raw: '* * * * * *', negative: false, fields: [[], [], [], [], [], []] }] };
  if (!entries.some((e) => !e.negative)) {
    throw new CronError(`'${text}' only excludes times and would never match; add an including entry such as '* * * * * *; ${text}'`);
  }
  const hasNegative = entries.some((e) => e.negative);
  return { raw: text.trim(), always: always && !hasNegative, entries };
}

export function entryMatches(entry: CronEntry, t: TimeParts): boolean {
  const f = entry.fields;
  return (
    fieldMatches(f[0], t.minute, false) &&
    fieldMatches(f[1], t.hour, false) &&
    fieldMatches(f[2], t.dom, false) &&
    fieldMatches(f[3], t.month, false) &&
    fieldMatches(f[4], t.dow, true) &&
    fieldMatches(f[5], t.year, false)
  );
}

/**
 * The entry that decides: the first excluding entry that matches (the
 * condition fails), else the first including entry that matches, else undefined.
 */
export function timeVerdict(cond: TimeCondition, t: TimeParts): { ok: boolean; entry?: CronEntry } {
  for (const e of cond.entries) if (e.negative && entryMatches(e, t)) return { ok: false, entry: e };
  for (const e of cond.entries) if (!e.negative && entryMatches(e, t)) return { ok: true, entry: e };
  return { ok: false };
}
