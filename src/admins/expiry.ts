import { Errors } from '../errors.ts';

const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };
const TEN_YEARS_MS = 3653 * 86_400_000;

/**
 * When an API key created at `now` expires: a duration (`30m`, `12h`, `90d`, `8w`), a date
 * (`2027-06-30`, meaning 00:00 UTC of that day) or a date and time with its zone
 * (`2027-06-30T18:00:00Z`, `…+02:00`). It must lie in the future, at most ten years ahead.
 */
export function parseExpiry(input: string, now: number): number {
  const text = input.trim();
  const bad = (why: string) => Errors.invalidParameter({ name: 'expires', why });
  let at: number;
  const duration = /^(\d{1,6})([mhdw])$/.exec(text);
  if (duration) {
    at = now + Number(duration[1]) * UNIT_MS[duration[2]];
  } else if (/^\d{4}-\d{2}-\d{2}$/.test(text)) {
    at = Date.parse(`${text}T00:00:00Z`);
    if (Number.isNaN(at) || new Date(at).toISOString().slice(0, 10) !== text) throw bad(`'${text}' is not a date`);
  } else if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/.test(text)) {
    at = Date.parse(text);
    if (Number.isNaN(at)) throw bad(`'${text}' is not a date and time`);
  } else {
    throw bad(`'${text}': use a duration (30m, 12h, 90d, 8w), a date (2027-06-30, 00:00 UTC) or a date and time with zone (2027-06-30T18:00:00Z)`);
  }
  if (at <= now) throw bad(`'${text}' is not in the future`);
  if (at - now > TEN_YEARS_MS) throw bad(`'${text}' is more than ten years ahead`);
  return at;
}
