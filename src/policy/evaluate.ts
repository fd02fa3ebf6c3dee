/**
 * Policy evaluation: pure functions over compiled policies (spec 3.3).
 *
 * 1. Candidates: active policies of the scope that carry the action (or `*`,
 *    for flag actions).
 * 2. Matching: realm, user, client and time conditions must all pass.
 * 3. Precedence: keep the best user match class (exact > pattern > `*`),
 *    then among those the best realm class (exact > `*`), then the best
 *    client class (exact > `*`).
 * 4. Value: the first winner in policy order (by name); winners with a
 *    different value are reported as conflicts.
 */
import { type ActionValue, type Scope, actionSpec } from './catalogue.ts';
import { type TimeParts, localTimeParts, timeVerdict } from './cron.ts';
import { cidrContains } from '../util/net.ts';
import {
  type CompiledPolicy,
  type MatchSubject,
  NO,
  type PreparedSubject,
  matchClient,
  matchRealm,
  matchUser,
  policyValue,
  prepareSubject,
  userEntryMatches,
} from './match.ts';
import { STAR } from './parse.ts';

export interface EvaluateOptions {
  /** Skip time conditions (LinOTP's `has_client_policy`). @default false */
  ignoreTime?: boolean;
  /** Build `explanations` (the simulator); the hot path leaves it off. @default false */
  explain?: boolean;
}

export type Outcome = 'winner' | 'tie' | 'outranked' | 'not-matched' | 'inactive' | 'no-value';

const OUTCOME_ORDER: readonly Outcome[] = ['winner', 'tie', 'outranked', 'not-matched', 'inactive', 'no-value'];

export interface Explanation {
  policy: string;
  outcome: Outcome;
  /** user/realm/client match classes of a matching policy */
  classes?: { user: string; realm: string; client: string };
  value?: ActionValue;
  reason: string;
}

export interface Conflict {
  policy: string;
  value: ActionValue;
}

export interface Decision {
  scope: Scope;
  action: string;
  /** typed value of the winning policy; undefined when no active policy sets the action */
  value: ActionValue | undefined;
  /** name of the policy the value comes from */
  winner?: string;
  /** every policy in the best precedence class */
  winners: string[];
  /** every policy that matched and carries the action */
  matched: string[];
  /** winners whose value differs from the winner's (LinOTP only logs a warning) */
  conflicts: Conflict[];
  /** why each candidate policy won or lost (only with `explain`) */
  explanations: Explanation[];
}

/** Policy conditions checked against one request; NO when a condition fails. */
export interface MatchResult {
  user: number;
  realm: number;
  client: number;
}

/** Whether an action is a flag (bool): then `*` sets it and `has()` means "true". */
export function isFlag(scope: Scope, action: string): boolean {
  const spec = actionSpec(scope, action);
  return !spec || spec.type.kind === 'bool';
}

/** Lazily computed local time parts, shared by all policies of one evaluation. */
export class TimeOfRequest {
  private parts: TimeParts | undefined;
  constructor(readonly nowMs: number) {}
  get(): TimeParts {
    return (this.parts ??= localTimeParts(this.nowMs));
  }
}

/** The match classes of a policy for a request, or undefined when it does not match. */
export function matchPolicy(p: CompiledPolicy, s: PreparedSubject, time: TimeOfRequest, ignoreTime = false): MatchResult | undefined {
  const realm = matchRealm(p.realmCond, s);
  if (realm === NO) return undefined;
  const user = matchUser(p.userCond, s);
  if (user === NO) return undefined;
  const client = matchClient(p.clientCond, s);
  if (client === NO) return undefined;
  if (!ignoreTime && !p.timeCond.always && !timeVerdict(p.timeCond, time.get()).ok) return undefined;
  return { user, realm, client };
}

function rank(m: MatchResult): number {
  return m.user * 16 + m.realm * 4 + m.client;
}

/**
 * Evaluates one action for a request. `policies` must be sorted by name
 * (that order breaks ties); inactive policies and other scopes are skipped.
 */
export function evaluate(
  policies: readonly CompiledPolicy[],
  scope: Scope,
  action: string,
  subject: MatchSubject,
  nowMs: number,
  opts: EvaluateOptions = {},
): Decision {
  return evaluatePrepared(policies, scope, action, prepareSubject(subject), nowMs, opts);
}

/** The hot-path answer: value, the policy it came from, and conflicting equals. */
export interface QuickDecision {
  value: ActionValue | undefined;
  winner?: CompiledPolicy;
  /** names of equally specific policies with a different value; undefined when none */
  conflicts?: string[];
}

/**
 * An active policy that gives one action a value and whose realm condition
 * already passed for the request's realm (`realm` is its match class).
 */
export interface Candidate {
  policy: CompiledPolicy;
  value: ActionValue;
  realm: number;
}

/**
 * The same answer as `evaluatePrepared` without the bookkeeping: one pass
 * over precomputed candidates (sorted by policy name), checking only user,
 * client and time; no arrays unless there is a conflict.
 */
export function quickDecision(
  candidates: readonly Candidate[],
  subject: PreparedSubject,
  time: TimeOfRequest,
  ignoreTime = false,
): QuickDecision {
  let bestRank = -1;
  let winner: CompiledPolicy | undefined;
  let value: ActionValue | undefined;
  let conflicts: string[] | undefined;
  for (const c of candidates) {
    const p = c.policy;
    const user = matchUser(p.userCond, subject);
    if (user === NO) continue;
    const client = matchClient(p.clientCond, subject);
    if (client === NO) continue;
    if (!ignoreTime && !p.timeCond.always && !timeVerdict(p.timeCond, time.get()).ok) continue;
    const r = user * 16 + c.realm * 4 + client;
    if (r > bestRank) {
      bestRank = r;
      winner = p;
      value = c.value;
      conflicts = undefined;
    } else if (r === bestRank && c.value !== value) {
      (conflicts ??= []).push(p.name);
    }
  }
  return { value, winner, conflicts };
}

/** `evaluate` for a subject prepared once per request (`prepareSubject`). */
export function evaluatePrepared(
  policies: readonly CompiledPolicy[],
  scope: Scope,
  action: string,
  subject: PreparedSubject,
  nowMs: number,
  opts: EvaluateOptions = {},
): Decision {
  const flag = isFlag(scope, action);
  const time = new TimeOfRequest(nowMs);
  const explain = opts.explain === true;
  const explanations: Explanation[] = [];
  const matched: { p: CompiledPolicy; m: MatchResult; value: ActionValue }[] = [];
  let bestRank = -1;

  for (const p of policies) {
    if (p.scope !== scope) continue;
    const value = policyValue(p, action, flag);
    if (value === undefined) {
      if (explain && p.actions.has(STAR)) {
        explanations.push({ policy: p.name, outcome: 'no-value', reason: `'*' does not give '${action}' a value (it is not a flag)` });
      }
      continue;
    }
    if (!p.active) {
      if (explain) explanations.push({ policy: p.name, outcome: 'inactive', value, reason: 'policy is inactive' });
      continue;
    }
    const m = matchPolicy(p, subject, time, opts.ignoreTime);
    if (!m) {
      if (explain) explanations.push({ policy: p.name, outcome: 'not-matched', value, reason: whyNot(p, subject, time, opts.ignoreTime) });
      continue;
    }
    matched.push({ p, m, value });
    const r = rank(m);
    if (r > bestRank) bestRank = r;
  }

  const winners = matched.filter((x) => rank(x.m) === bestRank);
  const first = winners[0];
  const conflicts: Conflict[] = [];
  for (const w of winners.slice(1)) if (w.value !== first.value) conflicts.push({ policy: w.p.name, value: w.value });

  if (explain) {
    for (const x of matched) {
      const classes = describeClasses(x.m);
      if (x === first) {
        explanations.push({ policy: x.p.name, outcome: 'winner', classes, value: x.value, reason: winnerReason(x.m, matched.length, winners.length) });
      } else if (rank(x.m) === bestRank) {
        const same = x.value === first.value;
        explanations.push({
          policy: x.p.name,
          outcome: 'tie',
          classes,
          value: x.value,
          reason: same
            ? `as specific as '${first.p.name}' and sets the same value`
            : `as specific as '${first.p.name}' but sets ${JSON.stringify(x.value)}: conflict, '${first.p.name}' wins by name order`,
        });
      } else {
        explanations.push({ policy: x.p.name, outcome: 'outranked', classes, value: x.value, reason: outrankReason(x.m, first.m, first.p.name) });
      }
    }
  }

  if (explain) explanations.sort((a, b) => OUTCOME_ORDER.indexOf(a.outcome) - OUTCOME_ORDER.indexOf(b.outcome) || (a.policy < b.policy ? -1 : 1));

  return {
    scope,
    action,
    value: first?.value,
    winner: first?.p.name,
    winners: winners.map((w) => w.p.name),
    matched: matched.map((x) => x.p.name),
    conflicts,
    explanations,
  };
}

const USER_CLASS = ['not checked', '*', 'pattern', 'exact'];
const FIELD_CLASS = ['not checked', '*', 'exact'];

function describeClasses(m: MatchResult): { user: string; realm: string; client: string } {
  return { user: USER_CLASS[m.user], realm: FIELD_CLASS[m.realm], client: FIELD_CLASS[m.client] };
}

function winnerReason(m: MatchResult, matchedCount: number, winnerCount: number): string {
  const c = describeClasses(m);
  const base = `matches (user ${c.user}, realm ${c.realm}, client ${c.client})`;
  if (matchedCount === 1) return `${base}; the only matching policy`;
  if (winnerCount > 1) return `${base}; most specific, first by name among ${winnerCount} equally specific policies`;
  return `${base}; most specific match`;
}

function outrankReason(m: MatchResult, best: MatchResult, bestName: string): string {
  if (m.user !== best.user) return `user match is ${USER_CLASS[m.user]}, '${bestName}' matches the user ${USER_CLASS[best.user]}`;
  if (m.realm !== best.realm) return `realm match is ${FIELD_CLASS[m.realm]}, '${bestName}' matches the realm ${FIELD_CLASS[best.realm]}`;
  return `client match is ${FIELD_CLASS[m.client]}, '${bestName}' matches the client ${FIELD_CLASS[best.client]}`;
}

/** A readable reason why a policy does not match (slow path, simulator only). */
export function whyNot(p: CompiledPolicy, s: PreparedSubject, time: TimeOfRequest, ignoreTime = false): string {
  if (matchRealm(p.realmCond, s) === NO) {
    if (s.realm !== undefined && p.realmCond.exclude.has(s.realm)) return `realm '${s.realm}' is excluded (realm '${p.realm}')`;
    return `realm '${s.realm}' is not in '${p.realm}'`;
  }
  if (matchUser(p.userCond, s) === NO) {
    if (p.userCond.none) return `empty user field matches nobody in scope ${p.scope}`;
    const excluding = p.userCond.entries.find((e) => e.negative && userEntryMatches(e, s));
    if (excluding) return `user '${s.login}' is excluded by '${excluding.raw}'`;
    return `user '${s.login}' does not match '${p.user}'`;
  }
  if (matchClient(p.clientCond, s) === NO) {
    if (p.clientCond.none) return `empty client field matches no client in scope ${p.scope}`;
    if (s.client === null) return `client '${s.clientText}' is not an IP address`;
    const ip = s.client;
    const excluding = ip && p.clientCond.entries.find((e) => e.negative && e.net && cidrContains(e.net, ip));
    if (excluding) return `client '${s.clientText}' is excluded by '${excluding.raw}'`;
    return `client '${s.clientText}' is not in '${p.client}'`;
  }
  if (!ignoreTime && !p.timeCond.always) {
    const v = timeVerdict(p.timeCond, time.get());
    if (!v.ok) {
      const at = new Date(time.nowMs).toString();
      return v.entry ? `time ${at} is excluded by '${v.entry.raw}'` : `time ${at} is outside '${p.time}'`;
    }
  }
  return 'matches';
}

/** The concrete `init<TYPE>` rights (initHMAC, initTOTP, …). */
const INIT_RIGHTS: readonly string[] = actionSpec('admin', 'initHMAC')?.family ?? [];

/**
 * The value a policy gives an admin right. `/admin/init` asks for `init` before it knows
 * the type (then for `init<TYPE>`); the catalogue has no `init`, so a policy granting any
 * `init<TYPE>` grants it, and `!initSMS` alone does not deny it (other types may be allowed).
 */
function adminValue(p: CompiledPolicy, action: string): ActionValue | undefined {
  const v = policyValue(p, action, true);
  if (v !== undefined || action !== 'init' || p.scope !== 'admin') return v;
  return INIT_RIGHTS.some((name) => p.actions.get(name) === true) ? true : undefined;
}

export interface AdminDecision {
  allowed: boolean;
  /** realms the action is allowed in: '*' = all */
  realms: '*' | string[];
  /** policies that granted the action */
  grantedBy: string[];
  /** a matching policy that denies the action explicitly (`!action`) */
  deniedBy?: string;
}

/**
 * Authorisation of an administrator (scopes admin, system, audit): without
 * any active policy in the scope everything is allowed in every realm.
 * Otherwise the union of the realms of the matching policies that grant the
 * action; an explicit `!action` in a matching policy denies it.
 */
export function evaluateAdmin(
  policies: readonly CompiledPolicy[],
  scope: 'admin' | 'system' | 'audit',
  action: string,
  admin: PreparedSubject,
  nowMs: number,
): AdminDecision {
  const inScope = policies.filter((p) => p.scope === scope && p.active);
  if (inScope.length === 0) return { allowed: true, realms: '*', grantedBy: [] };
  const time = new TimeOfRequest(nowMs);
  const grants: CompiledPolicy[] = [];
  for (const p of inScope) {
    const v = adminValue(p, action);
    if (v === undefined) continue;
    // the realm field lists the realms the admin manages, it does not filter the admin
    const user = matchUser(p.userCond, admin);
    if (user === NO) continue;
    if (matchClient(p.clientCond, admin) === NO) continue;
    if (!p.timeCond.always && !timeVerdict(p.timeCond, time.get()).ok) continue;
    if (v === false) return { allowed: false, realms: [], grantedBy: [], deniedBy: p.name };
    grants.push(p);
  }
  if (grants.length === 0) return { allowed: false, realms: [], grantedBy: [] };
  const realms = new Set<string>();
  for (const g of grants) {
    if (g.realmCond.any) return { allowed: true, realms: '*', grantedBy: grants.map((x) => x.name) };
    for (const r of g.realmCond.include) realms.add(r);
  }
  return { allowed: true, realms: [...realms].sort(), grantedBy: grants.map((x) => x.name) };
}

