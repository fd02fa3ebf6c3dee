/**
 * The policy simulator: "why was user X challenged?" For a user, realm,
 * client and time it answers which policies match, which one wins for each
 * action, the resulting values (or the defaults that apply) and why the
 * others lost. Pure: works on compiled policies.
 */
import { ACTIONS, type ActionValue, SCOPES, type Scope, actionDefault, actionSpec, isScope, unsupportedReason } from './catalogue.ts';
import {
  type AdminDecision,
  type Conflict,
  type Explanation,
  TimeOfRequest,
  evaluateAdmin,
  evaluatePrepared,
  matchPolicy,
  whyNot,
} from './evaluate.ts';
import { type CompiledPolicy, type PreparedSubject, prepareSubject } from './match.ts';
import { PolicyDefinitionError, STAR } from './parse.ts';

export interface SimulationInput {
  /** login, or `login@realm` when `realm` is not given */
  user?: string;
  realm?: string;
  client?: string;
  scope?: Scope;
  action?: string;
  resolver?: string;
  userInfo?: Record<string, string>;
  /** evaluate at this time (epoch ms) instead of now */
  at?: number;
  /** skip time conditions, as autoenrollment/passOnNoToken checks do @default false */
  ignoreTime?: boolean;
}

export interface PolicyVerdict {
  name: string;
  scope: Scope;
  active: boolean;
  matches: boolean;
  /** why it does or does not match */
  reason: string;
  /** actions of this stored policy that otpd does not support: not in force */
  notInForce?: string[];
}

export interface ActionResult {
  scope: Scope;
  action: string;
  /** the resulting value: from the winning policy, else the catalogue default */
  value: ActionValue | undefined;
  source: 'policy' | 'default' | 'unset';
  winner?: string;
  winners: string[];
  conflicts: Conflict[];
  explanations: Explanation[];
  /** scopes admin/system/audit: the authorisation answer */
  admin?: AdminDecision;
  /**
   * Why otpd does not support this action: no policy can set it (setPolicy
   * refuses it) and a stored policy that carries it does not put it in force.
   */
  unsupported?: string;
}

export interface SimulationResult {
  subject: { login?: string; realm?: string; resolver?: string; client?: string; time: string; ignoreTime: boolean };
  policies: PolicyVerdict[];
  actions: ActionResult[];
  /** conflicts that remain after precedence, one line each */
  warnings: string[];
}

const ADMIN_SCOPES = new Set<Scope>(['admin', 'system', 'audit']);

export function simulate(all: readonly CompiledPolicy[], input: SimulationInput, nowMs: number): SimulationResult {
  if (input.scope !== undefined && !isScope(input.scope)) {
    throw new PolicyDefinitionError('scope', `unknown scope '${input.scope}' (one of ${SCOPES.join(', ')})`);
  }
  let login = input.user;
  let realm = input.realm;
  if (login !== undefined && realm === undefined && login.includes('@')) {
    realm = login.slice(login.lastIndexOf('@') + 1);
    login = login.slice(0, login.lastIndexOf('@'));
  }
  const subject: PreparedSubject = prepareSubject({
    login: login === '' ? undefined : login,
    realm: realm === '' ? undefined : realm,
    resolver: input.resolver || undefined,
    client: input.client || undefined,
    userInfo: input.userInfo,
  });
  const at = input.at ?? nowMs;
  const ignoreTime = input.ignoreTime === true;
  const time = new TimeOfRequest(at);
  const scopes: Scope[] = input.scope ? [input.scope] : [...SCOPES];
  const inScope = all.filter((p) => scopes.includes(p.scope));

  const policies: PolicyVerdict[] = inScope.map((p) => {
    const notInForce = p.unsupported.length > 0 ? { notInForce: p.unsupported.map((u) => u.item) } : {};
    if (!p.active) return { name: p.name, scope: p.scope, active: false, matches: false, reason: 'policy is inactive', ...notInForce };
    const m = matchPolicy(p, subject, time, ignoreTime);
    return {
      name: p.name,
      scope: p.scope,
      active: true,
      matches: m !== undefined,
      reason: m ? 'matches' : whyNot(p, subject, time, ignoreTime),
      ...notInForce,
    };
  });

  // which actions to report: the one asked for, else every action a matching policy carries
  const wanted: { scope: Scope; action: string }[] = [];
  const seen = new Set<string>();
  const want = (scope: Scope, action: string) => {
    const key = `${scope}\0${action}`;
    if (!seen.has(key)) {
      seen.add(key);
      wanted.push({ scope, action });
    }
  };
  if (input.action) {
    for (const s of scopes) if (actionSpec(s, input.action) || inScope.some((p) => p.scope === s && p.actions.has(input.action!))) want(s, input.action);
    if (wanted.length === 0) {
      throw new PolicyDefinitionError('action', `unknown action '${input.action}'${input.scope ? ` in scope '${input.scope}'` : ''}`);
    }
  } else {
    const matching = new Set(policies.filter((v) => v.matches).map((v) => v.name));
    for (const p of inScope) {
      if (!matching.has(p.name)) continue;
      for (const u of p.unsupported) want(p.scope, u.action);
      for (const a of p.actions.keys()) {
        if (a !== STAR) want(p.scope, a);
        else for (const spec of ACTIONS) if (spec.scope === p.scope && spec.type.kind === 'bool' && spec.status !== 'unsupported') for (const n of spec.family ?? [spec.name]) want(p.scope, n);
      }
    }
  }

  const warnings: string[] = [];
  const actions: ActionResult[] = wanted.map(({ scope, action }) => {
    const reason = unsupportedReason(scope, action);
    if (reason !== undefined) {
      const carriers = inScope.filter((p) => p.unsupported.some((u) => u.action === action)).map((p) => p.name);
      return {
        scope,
        action,
        value: undefined,
        source: 'unset',
        winners: [],
        conflicts: [],
        explanations: carriers.map((policy) => ({ policy, outcome: 'no-value' as const, reason: 'stored with this action, which otpd does not support: not in force' })),
        unsupported: reason,
      };
    }
    const d = evaluatePrepared(inScope, scope, action, subject, at, { explain: true, ignoreTime });
    const def = actionDefault(scope, action);
    const result: ActionResult = {
      scope,
      action,
      value: d.value !== undefined ? d.value : def,
      source: d.value !== undefined ? 'policy' : def !== undefined ? 'default' : 'unset',
      winner: d.winner,
      winners: d.winners,
      conflicts: d.conflicts,
      explanations: d.explanations,
    };
    if (d.conflicts.length > 0) {
      warnings.push(
        `${scope}/${action}: ${[d.winner!, ...d.conflicts.map((c) => c.policy)].map((n) => `'${n}'`).join(', ')} are equally specific but set different values; '${d.winner}' wins by name order`,
      );
    }
    if (ADMIN_SCOPES.has(scope)) {
      result.admin = evaluateAdmin(inScope, scope as 'admin' | 'system' | 'audit', action, subject, at);
    }
    return result;
  });

  return {
    subject: {
      login: subject.login,
      realm: subject.realm,
      resolver: subject.resolver,
      client: subject.clientText,
      time: new Date(at).toISOString(),
      ignoreTime,
    },
    policies,
    actions,
    warnings,
  };
}

function show(v: ActionValue | undefined): string {
  return v === undefined ? '(unset)' : typeof v === 'string' ? JSON.stringify(v) : String(v);
}

/** A plain-text report of a simulation (CLI and logs). */
export function formatSimulation(r: SimulationResult): string {
  const lines: string[] = [];
  const s = r.subject;
  lines.push(
    `user ${s.login ?? '(any)'}${s.realm ? `@${s.realm}` : ''}${s.resolver ? ` (resolver ${s.resolver})` : ''}, client ${s.client ?? '(any)'}, time ${s.time}${s.ignoreTime ? ' (time conditions ignored)' : ''}`,
  );
  lines.push('');
  lines.push('Policies:');
  if (r.policies.length === 0) lines.push('  (none in this scope)');
  for (const p of r.policies) {
    lines.push(`  ${p.matches ? '+' : '-'} ${p.name} [${p.scope}]: ${p.reason}`);
    if (p.notInForce) lines.push(`      not in force (not supported by otpd): ${p.notInForce.join(', ')}`);
  }
  lines.push('');
  lines.push('Actions:');
  if (r.actions.length === 0) lines.push('  (no matching policy sets an action)');
  for (const a of r.actions) {
    if (a.unsupported !== undefined) {
      lines.push(`  ${a.scope}/${a.action}: not supported by otpd, never in force: ${a.unsupported}`);
      for (const e of a.explanations) lines.push(`      ${e.policy}: ${e.reason}`);
      continue;
    }
    const from = a.source === 'policy' ? `from '${a.winner}'` : a.source === 'default' ? 'default, no policy sets it' : 'no policy sets it';
    lines.push(`  ${a.scope}/${a.action} = ${show(a.value)} (${from})`);
    if (a.admin) {
      lines.push(
        `      authorisation: ${a.admin.allowed ? `allowed in ${a.admin.realms === '*' ? 'all realms' : a.admin.realms.join(', ')}` : `denied${a.admin.deniedBy ? ` by '${a.admin.deniedBy}'` : ''}`}`,
      );
    }
    for (const e of a.explanations) {
      if (e.outcome === 'winner') continue;
      lines.push(`      ${e.policy}: ${e.outcome}${e.value !== undefined ? ` (${show(e.value)})` : ''}: ${e.reason}`);
    }
  }
  if (r.warnings.length > 0) {
    lines.push('');
    lines.push('Conflicts:');
    for (const w of r.warnings) lines.push(`  ! ${w}`);
  }
  return lines.join('\n');
}
