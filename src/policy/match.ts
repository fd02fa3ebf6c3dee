/**
 * Policy conditions (spec 3.3), compiled once when policies are loaded so
 * that matching a request is a few comparisons and precompiled regexes.
 * The field conditions live in user-condition.ts, realm-condition.ts and
 * client-condition.ts, the subject and the match classes in match-subject.ts;
 * this module validates a whole policy and compiles its conditions, and
 * re-exports the field modules for its importers.
 *
 * Each field check returns a match class (higher = more specific) or NO:
 * user: 3 exact, 2 pattern/resolver/attribute, 1 `*`; realm and client:
 * 2 exact, 1 `*`; 0 = the request carries no value for this field, so the
 * field is not checked (as LinOTP does when a filter is not applied).
 */
import { type ActionValue, EMPTY_MEANS_ALL_SCOPES, type Scope } from './catalogue.ts';
import { type ClientCondition, compileClient } from './client-condition.ts';
import { CronError, type TimeCondition, compileTime } from './cron.ts';
import { type ActionMap, PolicyDefinitionError, type UnsupportedAction, parseActions, parseActive, parsePolicyName, parseScope } from './parse.ts';
import { type RealmCondition, compileRealm } from './realm-condition.ts';
import { type UserCondition, compileUser } from './user-condition.ts';

export * from './client-condition.ts';
export * from './match-subject.ts';
export * from './realm-condition.ts';
export * from './user-condition.ts';

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
