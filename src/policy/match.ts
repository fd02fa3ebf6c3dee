/**
 * Policy conditions (spec 3.3), compiled once when policies are loaded so
 * that matching a request is a few comparisons and precompiled regexes.
 *
 * Each field check returns a match class (higher = more specific) or NO:
 * user: 3 exact, 2 pattern/resolver/attribute, 1 `*`; realm and client:
 * 2 exact, 1 `*`; 0 = the request carries no value for this field, so the
 * field is not checked (as LinOTP does when a filter is not applied).
 */
import { type ActionValue, EMPTY_MEANS_ALL_SCOPES, type Scope } from './catalogue.ts';
import { CronError, type TimeCondition, compileTime } from './cron.ts';
import { CidrError, type Cidr, type IpAddress, cidrContains, parseCidr, parseIp } from '../util/net.ts';
import {
  type ActionMap,
  PolicyDefinitionError,
  type UnsupportedAction,
  parseActions,
  parseActive,
  parsePolicyName,
  parseScope,
} from './parse.ts';

export const NO = -1;
export const NOT_CHECKED = 0;
export const WILDCARD = 1;
export const PATTERN = 2;
export const EXACT_USER = 3;
export const EXACT = 2;

/** The request a policy is matched against. Fields left undefined are not checked. */
export interface MatchSubject {
  login?: string;
  realm?: string;
  resolver?: string;
  client?: string;
  userInfo?: Record<string, string | undefined>;
}

/** A subject with its realm lower-cased and client parsed (once per request). */
export interface PreparedSubject {
  login?: string;
  realm?: string;
  resolver?: string;
  userInfo?: Record<string, string | undefined>;
  clientText?: string;
  /** undefined: no client given; null: given but not an IP address */
  client?: IpAddress | null;
}

/** Parsed client addresses; requests come from a limited set of NAS/portal addresses. */
const clientCache = new Map<string, IpAddress | null>();

function parseClient(text: string): IpAddress | null {
  let ip = clientCache.get(text);
  if (ip === undefined) {
    ip = parseIp(text) ?? null;
    if (clientCache.size >= 4096) clientCache.clear();
    clientCache.set(text, ip);
  }
  return ip;
}

export function prepareSubject(s: MatchSubject): PreparedSubject {
  return {
    login: s.login,
    realm: s.realm?.toLowerCase(),
    resolver: s.resolver,
    userInfo: s.userInfo,
    clientText: s.client,
    client: s.client === undefined || s.client === '' ? undefined : parseClient(s.client),
  };
}

// ------------------------------------------------------------------ user

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

function splitList(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
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

// ------------------------------------------------------------------ realm

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

// ------------------------------------------------------------------ client

export interface ClientEntry {
  raw: string;
  negative: boolean;
  /** undefined = `*` */
  net?: Cidr;
}

export interface ClientCondition {
  raw: string;
  none: boolean;
  /** only `*` entries, no exclusions: matches every request, even with an unparsable client */
  all: boolean;
  entries: ClientEntry[];
}

/** One rule for host bits (util/net.ts): `10.1.2.3/8` is refused, naming the network probably meant. */
function clientNet(entry: string, body: string, negative: boolean): Cidr {
  try {
    return parseCidr(body);
  } catch (e) {
    if (!(e instanceof CidrError)) throw e;
    if (e.suggestion !== undefined) {
      throw new PolicyDefinitionError('client', `'${entry}' has host bits set; did you mean ${negative ? entry[0] : ''}${e.suggestion}?`);
    }
    throw new PolicyDefinitionError('client', `'${entry}' is not an IP address or network (a.b.c.d, a.b.c.d/n, IPv6, IPv6/n)`);
  }
}

/**
 * The client field with every network's host bits cleared (`10.1.2.3/8` →
 * `10.0.0.0/8`), or undefined when no entry has host bits set. Only for
 * policies stored before host bits were refused: they keep matching what they
 * matched then, and the service logs that they must be saved again.
 */
export function clientWithoutHostBits(text: string): string | undefined {
  let changed = false;
  const entries = splitList(text).map((entry) => {
    const negative = entry.startsWith('!') || entry.startsWith('-');
    const body = negative ? entry.slice(1).trim() : entry;
    if (body === '*') return entry;
    try {
      parseCidr(body);
      return entry;
    } catch (e) {
      if (!(e instanceof CidrError) || e.suggestion === undefined) return entry;
      changed = true;
      return `${negative ? entry[0] : ''}${e.suggestion}`;
    }
  });
  return changed ? entries.join(', ') : undefined;
}

export function compileClient(text: string, scope: Scope): ClientCondition {
  const raw = text.trim();
  const entries: ClientEntry[] = [];
  for (const entry of splitList(raw)) {
    const negative = entry.startsWith('!') || entry.startsWith('-');
    const body = negative ? entry.slice(1).trim() : entry;
    if (body === '*') {
      entries.push({ raw: entry, negative });
      continue;
    }
    entries.push({ raw: entry, negative, net: clientNet(entry, body, negative) });
  }
  if (entries.length === 0) {
    return EMPTY_MEANS_ALL_SCOPES.has(scope)
      ? { raw, none: false, all: true, entries: [{ raw: '*', negative: false }] }
      : { raw, none: true, all: false, entries: [] };
  }
  if (entries.every((e) => e.negative)) {
    throw new PolicyDefinitionError('client', `client '${raw}' only excludes addresses and would match none; add * ('*, ${raw}')`);
  }
  if (entries.some((e) => e.negative && !e.net)) throw new PolicyDefinitionError('client', "client '!*' excludes every address");
  const all = entries.every((e) => !e.net && !e.negative);
  return { raw, none: false, all, entries };
}

export function matchClient(c: ClientCondition, s: PreparedSubject): number {
  if (s.client === undefined) return NOT_CHECKED;
  if (c.none) return NO;
  if (c.all) return WILDCARD;
  const ip = s.client;
  // an unparsable client cannot be checked against exclusions: fail closed
  if (ip === null) return NO;
  let best = NO;
  for (const e of c.entries) {
    const hit = e.net ? cidrContains(e.net, ip) : true;
    if (!hit) continue;
    if (e.negative) return NO;
    const cls = e.net ? EXACT : WILDCARD;
    if (cls > best) best = cls;
  }
  return best;
}

// ------------------------------------------------------------------ policy

/** A policy as stored and shown (LinOTP's fields). */
export interface Policy {
  name: string;
  scope: Scope;
  action: string;
  realm: string;
  user: string;
  client: string;
  time: string;
  active: boolean;
}

/** What `/system/setPolicy` (and import) accepts. */
export interface PolicyInput {
  name: string;
  scope: string;
  action: string;
  realm?: string;
  user?: string;
  client?: string;
  time?: string;
  /** "True"/"False" as LinOTP, or a boolean. @default true */
  active?: string | boolean;
}

/** A validated policy with its conditions compiled for matching. */
export interface CompiledPolicy extends Policy {
  /** the actions in force (unsupported ones of a stored policy are not among them) */
  actions: ActionMap;
  /**
   * Actions of a policy stored before otpd refused them: listed in `action`,
   * not in force (empty for every policy stored by this version).
   */
  unsupported: readonly UnsupportedAction[];
  userCond: UserCondition;
  realmCond: RealmCondition;
  clientCond: ClientCondition;
  timeCond: TimeCondition;
}

export interface CompileOptions {
  /**
   * The policy comes from the database (it was accepted once): actions otpd
   * does not support are left out and listed in `unsupported` instead of
   * refusing the policy. Dropping the whole policy instead could widen
   * rights (the last admin policy gone = every administrator may do
   * everything). @default false
   */
  stored?: boolean;
}

/**
 * Validates a policy definition and compiles its conditions. Throws a
 * PolicyDefinitionError naming the field and the offending entry.
 */
export function compilePolicy(input: PolicyInput, opts: CompileOptions = {}): CompiledPolicy {
  const name = parsePolicyName(String(input.name ?? '').trim());
  const scope = parseScope(String(input.scope ?? ''));
  const action = String(input.action ?? '').trim();
  const unsupported: UnsupportedAction[] = [];
  const actions = parseActions(scope, action, opts.stored ? { onUnsupported: (u) => void unsupported.push(u) } : {});
  const realm = String(input.realm ?? '').trim().toLowerCase();
  const user = String(input.user ?? '').trim();
  const client = String(input.client ?? '').trim();
  const timeText = String(input.time ?? '').trim();
  let timeCond: TimeCondition;
  try {
    timeCond = compileTime(timeText);
  } catch (e) {
    if (e instanceof CronError) throw new PolicyDefinitionError('time', `time '${timeText}': ${e.message}`);
    throw e;
  }
  const policy: Policy = {
    name,
    scope,
    action,
    realm,
    user: user === '' && EMPTY_MEANS_ALL_SCOPES.has(scope) ? '*' : user,
    client: client === '' && EMPTY_MEANS_ALL_SCOPES.has(scope) ? '*' : client,
    time: timeCond.raw,
    active: parseActive(input.active),
  };
  return {
    ...policy,
    actions,
    unsupported,
    userCond: compileUser(user, scope),
    realmCond: compileRealm(realm, scope),
    clientCond: compileClient(client, scope),
    timeCond,
  };
}

/** The value a policy gives an action: explicit, `*` (true for flags), or undefined. */
export function policyValue(p: CompiledPolicy, action: string, isFlag: boolean): ActionValue | undefined {
  const v = p.actions.get(action);
  if (v !== undefined) return v;
  if (isFlag && p.actions.has('*')) return true;
  return undefined;
}
