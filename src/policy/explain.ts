/**
 * The simulator's answer in plain sentences, for a person asking "why is user X challenged?"
 * (`/system/checkPolicy`'s `explanation`, the management UI's simulator page): what each
 * action comes out as and which policy decided it, why the other candidates lost, and why
 * each policy of the scope applies or not. Pure: works on a {@link SimulationResult}.
 */
import type { ActionValue } from './catalogue.ts';
import type { Explanation } from './evaluate.ts';
import type { ActionResult, SimulationResult } from './simulate.ts';

export interface ActionExplanation {
  scope: string;
  action: string;
  /** One sentence: the value and where it comes from. */
  decision: string;
  /** Why the winner won, why each other candidate lost or does not apply; conflicts. */
  details: string[];
}

export interface PolicyExplanation {
  name: string;
  applies: boolean;
  /** One sentence: why the policy applies to the subject or not. */
  text: string;
}

export interface PlainExplanation {
  /** Who the question was about, e.g. "alice in realm corp, from client 10.1.2.3". */
  subject: string;
  actions: ActionExplanation[];
  policies: PolicyExplanation[];
}

/** What an otppin value means for the password a user types. */
const OTPPIN_MEANING: Record<string, string> = {
  token_pin: 'the password is the token PIN followed by the OTP',
  password: "the password is the user's user-store password followed by the OTP",
  only_otp: 'the password is the OTP alone, no PIN',
  ignore_pin: 'anything may precede the OTP: the PIN is not checked',
};

const USER_CLASS: Record<string, string> = { exact: 'names the user', pattern: 'matches the user by a pattern', '*': 'applies to every user' };
const REALM_CLASS: Record<string, string> = { exact: 'names the realm', '*': 'applies to every realm' };
const CLIENT_CLASS: Record<string, string> = { exact: "names the client's address or network", '*': 'applies to every client' };

function showValue(action: string, v: ActionValue | undefined, meaning = true): string {
  if (v === undefined) return 'not set';
  if (v === true) return 'on';
  if (v === false) return 'off';
  const text = `'${String(v)}'`;
  return meaning && action === 'otppin' && OTPPIN_MEANING[String(v)] ? `${text} (${OTPPIN_MEANING[String(v)]})` : text;
}

function subjectText(r: SimulationResult): string {
  const s = r.subject;
  const who = s.login ? s.login : 'any user';
  const realm = s.realm ? ` in realm ${s.realm}` : ' (no realm given)';
  const client = s.client ? `, from client ${s.client}` : '';
  return `${who}${realm}${client}`;
}

/** Which condition made `winner` more specific than `loser`, in words. */
function outranked(loser: Explanation, winner: Explanation | undefined): string {
  const l = loser.classes;
  const w = winner?.classes;
  if (!l || !w || !winner) return `it is less specific (${loser.reason})`;
  if (l.user !== w.user) return `${winner.policy} ${USER_CLASS[w.user] ?? w.user}, this one ${USER_CLASS[l.user] ?? l.user}`;
  if (l.realm !== w.realm) return `${winner.policy} ${REALM_CLASS[w.realm] ?? w.realm}, this one ${REALM_CLASS[l.realm] ?? l.realm}`;
  return `${winner.policy} ${CLIENT_CLASS[w.client] ?? w.client}, this one ${CLIENT_CLASS[l.client] ?? l.client}`;
}

function winnerWhy(winner: Explanation, matching: number): string {
  const c = winner.classes;
  const how = c ? ` (it ${[USER_CLASS[c.user], REALM_CLASS[c.realm], CLIENT_CLASS[c.client]].filter(Boolean).join(', ')})` : '';
  if (matching <= 1) return `${winner.policy} is the only active policy that matches and sets it${how}.`;
  return `${winner.policy} is the most specific of the ${matching} matching policies that set it${how}; a policy that names the user beats one for a pattern or every user, then one that names the realm, then one that names the client.`;
}

function explainAction(a: ActionResult, who: string): ActionExplanation {
  const head = `${a.scope}/${a.action}`;
  const details: string[] = [];
  let decision: string;
  if (a.unsupported !== undefined) {
    decision = `${head} is never in force: otpd does not support it (${a.unsupported}).`;
    for (const e of a.explanations) details.push(`${e.policy} carries it, but it is not in force.`);
    return { scope: a.scope, action: a.action, decision, details };
  }
  const winner = a.explanations.find((e) => e.outcome === 'winner');
  const matching = a.explanations.filter((e) => e.classes !== undefined).length;
  if (a.admin) {
    const realms = a.admin.realms === '*' ? 'in every realm' : `in the realms ${a.admin.realms.join(', ')}`;
    decision = a.admin.allowed
      ? a.admin.grantedBy.length
        ? `${who} may ${a.action} ${realms}: granted by ${a.admin.grantedBy.join(', ')}.`
        : `${who} may ${a.action} ${realms}: no active policy restricts the scope ${a.scope}.`
      : a.admin.deniedBy
        ? `${who} may not ${a.action}: ${a.admin.deniedBy} denies it.`
        : `${who} may not ${a.action}: policies restrict the scope ${a.scope} and none that matches grants it.`;
  } else if (a.source === 'policy') {
    decision = `${head} is ${showValue(a.action, a.value)} for ${who}: set by policy ${a.winner}.`;
    if (winner) details.push(winnerWhy(winner, matching));
  } else if (a.source === 'default') {
    decision = `No policy sets ${head} for ${who}, so otpd uses its default: ${showValue(a.action, a.value)}.`;
  } else {
    decision = `No policy sets ${head} for ${who}: it is not set (off).`;
  }
  for (const e of a.explanations) {
    const value = e.value !== undefined ? ` (it sets ${showValue(a.action, e.value, false)})` : '';
    switch (e.outcome) {
      case 'winner':
        break;
      case 'tie':
        details.push(`${e.policy} matches too and is as specific${value}: ${e.value === a.value ? 'same value, no conflict' : `a conflict; ${a.winner} wins because its name sorts first`}.`);
        break;
      case 'outranked':
        details.push(`${e.policy} matches too${value} but loses: ${outranked(e, winner)}.`);
        break;
      case 'not-matched':
        details.push(`${e.policy} does not apply${value}: ${e.reason}.`);
        break;
      case 'inactive':
        details.push(`${e.policy} would set it${value} but is inactive.`);
        break;
      case 'no-value':
        details.push(`${e.policy}: ${e.reason}.`);
        break;
    }
  }
  return { scope: a.scope, action: a.action, decision, details };
}

/** The simulation in plain sentences. */
export function explainSimulation(r: SimulationResult): PlainExplanation {
  const who = subjectText(r);
  const user = r.subject.login ?? 'the user';
  return {
    subject: who,
    actions: r.actions.map((a) => explainAction(a, who)),
    policies: r.policies.map((p) => ({
      name: p.name,
      applies: p.matches,
      text: p.matches
        ? `${p.name} applies to ${user}: its realm, user, client and time conditions all fit${p.notInForce ? ` (not in force: ${p.notInForce.join(', ')}, which otpd does not support)` : ''}.`
        : `${p.name} does not apply to ${user}: ${p.reason}.`,
    })),
  };
}
