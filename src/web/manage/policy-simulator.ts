import { OtpdError } from '../../errors.ts';
import type { ManageKit, View } from './kit.ts';
import { queryText } from './list-view.ts';
import { policyHref } from './policy-form.ts';
import { orRefusal } from './refusal.ts';
import type { PageCall } from './session.ts';
import { asRecord } from './stores.ts';

/**
 * The policy simulator (`/manage/policies/simulate`): "why is user X challenged?". A GET form
 * (user, realm, client, scope, action; bookmarkable, it changes nothing) asks
 * `/system/checkPolicy` and shows its answer in plain words: per action the decision and the
 * policy that made it, why the other candidates lost or do not apply, and for every policy of
 * the scope whether it applies to the user and why.
 */

interface ActionExplanation { scope: string; action: string; decision: string; details: string[] }
interface PolicyExplanation { name: string; applies: boolean; text: string }
interface SimulatedAction { action: string; source?: string; winner?: string; value?: unknown; unsupported?: string }

export interface SimulatorAnswer {
  subject: string;
  actions: (ActionExplanation & { winner?: string; source?: string })[];
  policies: PolicyExplanation[];
  warnings: string[];
  allowed: boolean;
  /** LinOTP's `policy` field: the winning policies' names, or its sentence */
  linotpPolicy: string;
}

const SIM_FIELDS = ['user', 'realm', 'client', 'scope', 'action'] as const;

function answerOf(raw: Record<string, unknown>): SimulatorAnswer {
  const explanation = asRecord(raw.explanation);
  const simulation = asRecord(raw.simulation);
  const simulated = (Array.isArray(simulation.actions) ? simulation.actions : []) as SimulatedAction[];
  const actions = (Array.isArray(explanation.actions) ? explanation.actions : []) as ActionExplanation[];
  const policy = raw.policy;
  return {
    subject: String(explanation.subject ?? ''),
    actions: actions.map((a, i) => ({ ...a, winner: simulated[i]?.winner, source: simulated[i]?.source })),
    policies: (Array.isArray(explanation.policies) ? explanation.policies : []) as PolicyExplanation[],
    warnings: (Array.isArray(simulation.warnings) ? simulation.warnings : []).map(String),
    allowed: raw.allowed === true,
    linotpPolicy: typeof policy === 'string' ? policy : Object.keys(asRecord(policy)).join(', ') || '(none)',
  };
}

/** The form's field a refusal concerns (checkPolicy names the parameter or the action). */
function fieldOf(message: string): string | undefined {
  if (/unknown action|action '/.test(message)) return 'action';
  const named = /'(user|realm|client|scope|action)'/.exec(message)?.[1];
  return named ?? (/scope/.test(message) ? 'scope' : undefined);
}

async function simulatorView(call: PageCall, query: unknown): Promise<View> {
  const form = Object.fromEntries(SIM_FIELDS.map((f) => [f, queryText(query, f).trim()])) as Record<(typeof SIM_FIELDS)[number], string>;
  const asked = form.scope !== '';
  if (!form.scope) form.scope = 'authentication';
  const defs = asRecord(await call.api('/system/getPolicyDef')) as Record<string, Record<string, unknown>>;
  const actionsByScope = Object.fromEntries(Object.entries(defs).map(([s, d]) => [s, Object.keys(asRecord(d))]));
  let realms: string[] = [];
  try {
    realms = Object.keys(asRecord(await call.api('/system/getRealms'))).sort();
  } catch (e) {
    if (!(e instanceof OtpdError)) throw e;
  }
  let answer: SimulatorAnswer | undefined;
  let problem: { field?: string; text: string } | undefined;
  if (asked) {
    // alice@corp in the user field names the realm when the realm field is empty
    let { user, realm } = form;
    if (!realm && user.includes('@')) [user, realm] = [user.slice(0, user.lastIndexOf('@')), user.slice(user.lastIndexOf('@') + 1)];
    try {
      answer = answerOf(asRecord(await call.api('/system/checkPolicy', { user, realm, client: form.client, scope: form.scope, action: form.action })));
    } catch (e) {
      if (!(e instanceof OtpdError)) throw e;
      problem = { field: fieldOf(e.message), text: `${e.message[0]!.toUpperCase()}${e.message.slice(1)}.` };
    }
  }
  return {
    template: 'manage/policies-simulate',
    data: { title: 'Policy simulator', form, scopes: Object.keys(defs), actionsByScope, realms, answer, problem, asked, href: policyHref },
  };
}

export function registerSimulator(kit: ManageKit): void {
  kit.app.get('/manage/policies/simulate', kit.page(orRefusal(async (call, request) => simulatorView(call, request.query))));
}
