/**
 * The user condition of a policy (spec 3.3): entries `login`, `login@realm`,
 * `login.resolver:` (login patterns with `*`), `#attr`, `#attr==v`, `!=`, `~=`
 * (a regular expression), `*`, each negatable with `!` or `-`. Match classes:
 * 3 the entry names this very user, 2 pattern/resolver/attribute, 1 `*`.
 */
import { EMPTY_MEANS_ALL_SCOPES, type Scope } from './catalogue.ts';
import { EXACT_USER, NO, NOT_CHECKED, PATTERN, type PreparedSubject, WILDCARD, splitList } from './match-subject.ts';
import { PolicyDefinitionError } from './parse.ts';

interface LoginPattern {
  text: string;
  /** null = `*` (anybody) */
  re: RegExp | null;
}

interface UserSpec {
  login: LoginPattern;
  realm?: { text: string; re: RegExp };
  resolver?: string;
}

type AttrOp = 'exists' | 'eq' | 'ne' | 're';

export interface UserEntry {
  raw: string;
  negative: boolean;
  /** `*` alone */
  any: boolean;
  /** undefined for attribute-only entries (`#mobile`) */
  who?: UserSpec;
  attr?: { key: string; op: AttrOp; value: string; re?: RegExp };
}

export interface UserCondition {
  raw: string;
  /** empty field outside the five scopes: matches nobody */
  none: boolean;
  entries: UserEntry[];
}

/** `*` → `.*` (an existing `.*` stays), anchored at both ends, as LinOTP. */
function wildcardRegex(text: string, flags: string, what: string): RegExp {
  const source = text.replace(/(?<!\.)\*/g, '.*');
  try {
    return new RegExp(`^(?:${source})$`, flags);
  } catch (e) {
    throw new PolicyDefinitionError('user', `${what} '${text}' is not a valid pattern (${(e as Error).message})`);
  }
}

function loginPattern(text: string): LoginPattern {
  if (text === '*' || text === '') return { text: '*', re: null };
  return { text, re: wildcardRegex(text, '', 'login pattern') };
}

function parseUserSpec(text: string): UserSpec {
  if (text.includes('@')) {
    const at = text.lastIndexOf('@');
    const realm = text.slice(at + 1);
    if (realm === '') throw new PolicyDefinitionError('user', `'${text}' has an empty realm after @`);
    return { login: loginPattern(text.slice(0, at)), realm: { text: realm, re: wildcardRegex(realm, 'i', 'realm pattern') } };
  }
  if (text.endsWith(':')) {
    const body = text.slice(0, -1);
    const dot = body.lastIndexOf('.');
    const resolver = dot < 0 ? body : body.slice(dot + 1);
    if (resolver === '') throw new PolicyDefinitionError('user', `'${text}' names no resolver before ':'`);
    return { login: loginPattern(dot < 0 ? '*' : body.slice(0, dot)), resolver };
  }
  return { login: loginPattern(text) };
}

function parseUserEntry(rawEntry: string): UserEntry {
  let text = rawEntry;
  let negative = false;
  if (text.startsWith('!') || text.startsWith('-')) {
    negative = true;
    text = text.slice(1).trim();
  }
  if (text === '') throw new PolicyDefinitionError('user', `empty user entry '${rawEntry}'`);
  if (text === '*') return { raw: rawEntry, negative, any: true };
  const hash = text.indexOf('#');
  if (hash >= 0) {
    const who = text.slice(0, hash).trim();
    const cond = text.slice(hash + 1);
    let attr: UserEntry['attr'];
    for (const [sep, op] of [['==', 'eq'], ['!=', 'ne'], ['~=', 're']] as const) {
      const i = cond.indexOf(sep);
      if (i >= 0) {
        const key = cond.slice(0, i).trim();
        const value = cond.slice(i + 2).trim();
        let re: RegExp | undefined;
        if (op === 're') {
          try {
            re = new RegExp(value);
          } catch (e) {
            throw new PolicyDefinitionError('user', `'${rawEntry}': '${value}' is not a valid regular expression (${(e as Error).message})`);
          }
        }
        attr = { key, op, value, re };
        break;
      }
    }
    attr ??= { key: cond.trim(), op: 'exists', value: '' };
    if (!/^[A-Za-z0-9_.-]+$/.test(attr.key)) throw new PolicyDefinitionError('user', `'${rawEntry}' names no valid attribute after #`);
    return { raw: rawEntry, negative, any: false, who: who ? parseUserSpec(who) : undefined, attr };
  }
  return { raw: rawEntry, negative, any: false, who: parseUserSpec(text) };
}

export function compileUser(text: string, scope: Scope): UserCondition {
  const raw = text.trim();
  const entries = splitList(raw).map(parseUserEntry);
  if (entries.length === 0) {
    return EMPTY_MEANS_ALL_SCOPES.has(scope)
      ? { raw, none: false, entries: [{ raw: '*', negative: false, any: true }] }
      : { raw, none: true, entries: [] };
  }
  if (entries.every((e) => e.negative)) {
    throw new PolicyDefinitionError('user', `user '${raw}' only excludes users and would match nobody; add * to include the others ('*, ${raw}')`);
  }
  return { raw, none: false, entries };
}

function specMatches(spec: UserSpec, s: PreparedSubject): boolean {
  if (spec.realm && (s.realm === undefined || !spec.realm.re.test(s.realm))) return false;
  if (spec.resolver !== undefined && s.resolver !== spec.resolver) return false;
  return spec.login.re === null || spec.login.re.test(s.login!);
}

function present(v: string | undefined): v is string {
  return v !== undefined && v !== '';
}

function attrMatches(attr: NonNullable<UserEntry['attr']>, info: Record<string, string | undefined> | undefined): boolean {
  if (!info) return false;
  const v = info[attr.key];
  switch (attr.op) {
    case 'exists':
      return present(v);
    case 'eq':
      return present(v) && v.trim() === attr.value;
    case 'ne':
      return !(present(v) && v.trim() === attr.value);
    case 're':
      return present(v) && attr.re!.test(v);
  }
}

export function userEntryMatches(e: UserEntry, s: PreparedSubject): boolean {
  if (e.any) return true;
  if (e.who && !specMatches(e.who, s)) return false;
  if (e.attr && !attrMatches(e.attr, s.userInfo)) return false;
  return true;
}

/** Exact: the entry names this very user literally (`login`, `login@realm`, `login.resolver:`). */
function userEntryClass(e: UserEntry, s: PreparedSubject): number {
  if (e.any) return WILDCARD;
  if (e.attr || !e.who) return PATTERN;
  const w = e.who;
  if (w.login.text !== s.login) return PATTERN;
  if (w.realm && w.realm.text.toLowerCase() !== s.realm) return PATTERN;
  return EXACT_USER;
}

export function matchUser(c: UserCondition, s: PreparedSubject): number {
  if (s.login === undefined) return NOT_CHECKED;
  if (c.none) return NO;
  let best = NO;
  for (const e of c.entries) {
    if (!userEntryMatches(e, s)) continue;
    if (e.negative) return NO;
    const cls = userEntryClass(e, s);
    if (cls > best) best = cls;
  }
  return best;
}
