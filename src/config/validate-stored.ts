import { Errors } from '../errors.ts';
import { lookup, specProblem } from './catalogue.ts';
import { isSecretSchema } from './values.ts';

/**
 * What is read back from the `config` table is screened with the same catalogue entries
 * (config/catalogue.ts) `/system/setConfig` checks, so a value written around the API (directly,
 * by an older node) can never switch a limit off: the server refuses to start on it, and a
 * running node ignores it.
 */

// The send-limit syntax is a config value format; delivery/settings.ts re-exports it from here.
export { MAX_CONFIG_VALUE_LENGTH, limitProblem, parseLimit, type LimitSpec } from './values.ts';

/** Why `value` (plain text) is not acceptable for `key`, or null when it is (also for a key the catalogue does not know). */
export function configValueProblem(key: string, value: string): string | null {
  const spec = lookup(key);
  return spec ? specProblem(spec, value) : null;
}

export interface StoredConfigRow {
  key: string;
  value: string;
  type: string;
}

export interface StoredConfigProblem {
  key: string;
  problem: string;
}

/**
 * Splits rows read from the `config` table into the ones to use and the ones refused. A refused
 * row keeps the key's previous valid entry (from `previous`) in force, else the default applies.
 * `plain` gives a row's clear text (a sealed value decrypted). Secret entries (ciphertext, not
 * limits) are taken as they are; so are keys the catalogue does not know (listed in `unknown`:
 * otpd reads none of them).
 */
export function screenStoredConfig<T extends StoredConfigRow>(
  rows: T[], previous: ReadonlyMap<string, T>, plain: (row: T) => string = (row) => row.value,
): { accepted: Map<string, T>; rejected: StoredConfigProblem[]; unknown: string[] } {
  const accepted = new Map<string, T>();
  const rejected: StoredConfigProblem[] = [];
  const unknown: string[] = [];
  for (const row of rows) {
    const spec = lookup(row.key);
    if (!spec) unknown.push(row.key);
    const problemOf = (r: T) => (!spec || isSecretSchema(spec.type) ? null : rowProblem(r, plain, (text) => specProblem(spec, text)));
    const problem = problemOf(row);
    if (!problem) {
      accepted.set(row.key, row);
      continue;
    }
    rejected.push({ key: row.key, problem });
    const kept = previous.get(row.key);
    if (kept && !problemOf(kept)) accepted.set(row.key, kept);
  }
  return { accepted, rejected, unknown };
}

function rowProblem<T>(row: T, plain: (row: T) => string, problem: (text: string) => string | null): string | null {
  let text: string;
  try {
    text = plain(row);
  } catch {
    return 'cannot be decrypted with this key file';
  }
  return problem(text);
}

/** Throws `Errors.storedConfigInvalid` naming every refused key; called once at server start. */
export function validateStoredConfig(config: { rejected: readonly StoredConfigProblem[] }): void {
  if (config.rejected.length > 0) throw Errors.storedConfigInvalid({ problems: config.rejected.map((p) => `${p.key}: ${p.problem}`).join('; ') });
}
