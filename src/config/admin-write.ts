import { Errors } from '../errors.ts';
import { lookup, specProblem, type ConfigSpec } from './catalogue.ts';
import { PlaceholderWithoutSecretError } from './secrets.ts';
import type { ConfigService } from './service.ts';

/**
 * The checks of an administrator's config write, shared by `/system/setConfig` and
 * `otpd config apply`: the key is in the catalogue and not refused, the value fits its entry.
 * Refusals are the catalogue's errors and name the parameter (`key`, or the key itself).
 */

const KEY = /^[A-Za-z0-9_.:-]{1,128}$/;

/** The catalogue entry of a key a client may set; refusals name the parameter (`key`, or the key itself in the name=value form). */
export function settableConfigKey(param: string, key: string): ConfigSpec {
  if (!KEY.test(key)) throw Errors.invalidConfigKey({ key: param });
  const spec = lookup(key);
  if (!spec) throw Errors.unknownConfigKey({ key });
  if (spec.refused) throw Errors.unsupportedConfigKey({ key, reason: spec.refused });
  return spec;
}

/** Refuses (2703) a value that does not fit the key's entry. */
export function checkConfigValue(spec: ConfigSpec, key: string, value: string): void {
  const problem = specProblem(spec, value);
  if (problem) throw Errors.invalidConfigValue({ key, problem });
}

/**
 * The admin write for one key, checked against the catalogue with placeholders resolved
 * (null: the stored entry stays as it is); nothing is written here.
 */
export function planConfigWrite(config: ConfigService, param: string, key: string, value: string, type: string): { value: string; type: string } | null {
  const spec = settableConfigKey(param, key);
  let write: { value: string; type: string } | null;
  try {
    write = config.resolveAdminWrite(key, value, type);
  } catch (e) {
    if (e instanceof PlaceholderWithoutSecretError) throw Errors.configPlaceholderWithoutSecret({ path: e.path });
    throw e;
  }
  if (write) checkConfigValue(spec, key, write.value);
  return write;
}
