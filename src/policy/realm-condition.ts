/**
 * The realm condition of a policy (spec 3.3): realm names and `*`, each negatable
 * with `!` or `-` (not in the admin, system and audit scopes). Match classes:
 * 2 the realm is named, 1 `*`.
 */
import type { Scope } from './catalogue.ts';
import { EXACT, NO, NOT_CHECKED, type PreparedSubject, WILDCARD, splitList } from './match-subject.ts';
import { PolicyDefinitionError } from './parse.ts';

export interface RealmCondition {
  raw: string;
  any: boolean;
  include: ReadonlySet<string>;
  exclude: ReadonlySet<string>;
}

export function compileRealm(text: string, scope: Scope): RealmCondition {
  const raw = text.trim();
  const include = new Set<string>();
  const exclude = new Set<string>();
  let any = false;
  for (const entry of splitList(raw.toLowerCase())) {
    const negative = entry.startsWith('!') || entry.startsWith('-');
    const name = negative ? entry.slice(1).trim() : entry;
    if (name === '*') {
      if (negative) throw new PolicyDefinitionError('realm', "realm '!*' excludes every realm");
      any = true;
      continue;
    }
    if (!/^[a-z0-9_.-]+$/.test(name)) throw new PolicyDefinitionError('realm', `'${entry}' is not a realm name`);
    (negative ? exclude : include).add(name);
  }
  if (!any && include.size === 0) {
    throw new PolicyDefinitionError(
      'realm',
      raw === '' ? 'realm is required (* = every realm)' : `realm '${raw}' only excludes realms and would match none; add * ('*, ${raw}')`,
    );
  }
  if (exclude.size > 0 && (scope === 'admin' || scope === 'system' || scope === 'audit')) {
    throw new PolicyDefinitionError('realm', `scope ${scope}: list the realms the administrator may manage; exclusions are not supported here`);
  }
  return { raw, any, include, exclude };
}

export function matchRealm(c: RealmCondition, s: PreparedSubject): number {
  if (s.realm === undefined) return NOT_CHECKED;
  if (c.exclude.has(s.realm)) return NO;
  if (c.include.has(s.realm)) return EXACT;
  return c.any ? WILDCARD : NO;
}
