import type { FastifyReply, FastifyRequest } from 'fastify';
import { Errors, OtpdError } from '../../errors.ts';
import { invokeRoute } from '../../api/route.ts';
import { parsePolicyFile } from '../../policy/policyfile.ts';
import { renderPage } from '../page.ts';
import type { Done, ManageKit, View } from './kit.ts';
import { listPage, queryText } from './list-view.ts';
import { orRefusal } from './refusal.ts';
import { pageSession, type PageCall } from './session.ts';
import { asRecord } from './stores.ts';
import { actionFields, otherItems, policyHref, postedAction, valuesFromAction, type ActionField, type ActionValues } from './policy-form.ts';
import { registerSimulator } from './policy-simulator.ts';

/**
 * Policies (`/manage/policies`): the list (filter by scope, realm and text, sortable, paged),
 * a form per policy whose actions are those `/system/getPolicyDef` offers for the chosen scope,
 * each with an input of its type and its help text (the free action string beside them for
 * experts, kept in sync), refusals of `/system/setPolicy` next to the field they concern;
 * delete (confirmed), import of a LinOTP `policy.cfg` pasted into a text area
 * (`/system/importPolicy`), export as a download (`/system/getPolicy export=true`), and the
 * simulator (policy-simulator.ts). Every read and write is the API route's, called in-process.
 */

/** What getPolicy answers for one policy (LinOTP's shape). */
export interface PolicyRow { name: string; scope: string; action: string; realm: string; user: string; client: string; time: string; active: string }

/** Every stored policy, inactive ones too (the admin's read right applies). */
export async function allPolicies(call: PageCall, filter: Record<string, string> = {}): Promise<PolicyRow[]> {
  return Object.values(asRecord(await call.api('/system/getPolicy', { display_inactive: 'true', ...filter }))) as PolicyRow[];
}

async function storedPolicy(call: PageCall, name: string): Promise<PolicyRow | undefined> {
  return (await allPolicies(call, { name })).find((p) => p.name === name);
}

/** getPolicyDef for every scope: scope → action → definition. */
export async function policyDefs(call: PageCall): Promise<Record<string, Record<string, unknown>>> {
  return asRecord(await call.api('/system/getPolicyDef')) as Record<string, Record<string, unknown>>;
}

/** The realms for the form's suggestions; none when the admin may not read them. */
async function realmNames(call: PageCall): Promise<string[]> {
  try {
    return Object.keys(asRecord(await call.api('/system/getRealms'))).sort();
  } catch (e) {
    if (e instanceof OtpdError) return [];
    throw e;
  }
}

interface Problem { field?: string; text: string }

/** The form's state: what is shown, typed or stored. */
interface FormState {
  stored?: string;
  name: string;
  scope: string;
  action: string;
  realm: string;
  user: string;
  client: string;
  time: string;
  active: boolean;
  problems?: Problem[];
  notice?: string;
}

const FIELD_LABELS: Record<string, string> = {
  name: 'Name', scope: 'Scope', action: 'Action string', realm: 'Realm', user: 'User', client: 'Client', time: 'Time', active: 'Active', file: 'Policy file',
};

/** The id of the input a problem's field points at. */
export const fieldId = (field: string) => `f-${field.replace(/\./g, '-').replace(/\*/g, 'all')}`;

async function formView(call: PageCall, s: FormState): Promise<View> {
  const defs = await policyDefs(call);
  const fields = actionFields(s.scope, defs[s.scope] ?? {});
  const values: ActionValues = valuesFromAction(s.action, fields);
  const problems = s.problems ?? [];
  const fieldErrors: Record<string, string> = {};
  for (const p of problems) if (p.field && !fieldErrors[p.field]) fieldErrors[p.field] = p.text;
  const scopes = Object.keys(defs).filter((sc) => Object.keys(defs[sc] ?? {}).length > 0 || sc === s.scope);
  const editing = s.stored !== undefined;
  const label = (field: string) => (field.startsWith('a.') ? `Action ${field.slice(2)}` : FIELD_LABELS[field] ?? field);
  return {
    template: 'manage/policies-form',
    data: {
      title: editing ? `Policy ${s.stored}` : 'New policy',
      editing, state: s, scopes, fields, values, others: otherItems(s.action, fields), problems, fieldErrors, label,
      firstInput: (f: ActionField) => (f.input.kind === 'multi' ? fieldId(`a.${f.name}.${f.input.items[0]}`) : fieldId(`a.${f.name}`)),
      fieldId, realms: await realmNames(call), formAction: editing ? policyHref(s.stored!) : '/manage/policies/new',
    },
  };
}

function stateOf(p: PolicyRow): FormState {
  return { stored: p.name, name: p.name, scope: p.scope, action: p.action, realm: p.realm, user: p.user, client: p.client, time: p.time, active: p.active !== 'False' };
}

/** Where a refusal belongs: the field the API names, and for an action the action's own input. */
function problemOf(error: OtpdError, fields: ActionField[], fromText: boolean): Problem[] {
  const named = (error as OtpdError & { field?: unknown }).field;
  let field = typeof named === 'string' ? named : undefined;
  if (!field && (error.code === Errors.missingParameter.code || error.code === Errors.invalidParameter.code)) field = /'(\w+)'/.exec(error.message)?.[1];
  if (!field && error.code === Errors.invalidPolicyName.code) field = 'name';
  const text = `${error.message[0]!.toUpperCase()}${error.message.slice(1)}${/[.!?]$/.test(error.message) ? '' : '.'}`;
  if (field === 'action') {
    const action = /action '!?([A-Za-z0-9_*.-]+)'/.exec(error.message)?.[1];
    const f = fields.find((x) => x.name === action);
    if (f) return fromText ? [{ field: `a.${f.name}`, text }, { field: 'action', text }] : [{ field: `a.${f.name}`, text }];
  }
  return [{ ...(field && Object.hasOwn(FIELD_LABELS, field) ? { field } : {}), text }];
}

/** The policy a posted form describes. */
function postedState(body: Record<string, string>, fields: ActionField[], stored?: string): { state: FormState; fromText: boolean } {
  const { action, fromText } = postedAction(body, fields);
  return {
    fromText,
    state: {
      stored, name: stored ?? (body.name ?? '').trim(), scope: body.scope ?? '', action,
      realm: (body.realm ?? '').trim(), user: (body.user ?? '').trim(), client: (body.client ?? '').trim(), time: (body.time ?? '').trim(),
      active: body.active === 'True',
    },
  };
}

/** Save or change scope: what one post of the form does. */
async function submit(call: PageCall, body: Record<string, string>, stored?: string): Promise<Done | View> {
  const defs = await policyDefs(call);
  // the fields the form was shown with (its scope before a change)
  const shownScope = body.scope_shown ?? body.scope ?? '';
  const fields = actionFields(shownScope, defs[shownScope] ?? {});
  const { state, fromText } = postedState(body, fields, stored);
  if (body.step === 'scope' || (body.scope ?? '') !== shownScope) {
    return formView(call, { ...state, action: shownScope === state.scope ? state.action : '', notice: `Scope ${state.scope}: choose its actions below.` });
  }
  if (stored === undefined && state.name && (await storedPolicy(call, state.name))) {
    return formView(call, { ...state, problems: [{ field: 'name', text: `A policy named ${state.name} exists already: open it from the list to change it.` }] });
  }
  try {
    await call.api('/system/setPolicy', {
      name: state.name, scope: state.scope, action: state.action, realm: state.realm, user: state.user, client: state.client, time: state.time,
      active: state.active ? 'True' : 'False',
    });
  } catch (e) {
    if (!(e instanceof OtpdError)) throw e;
    return formView(call, { ...state, problems: problemOf(e, fields, fromText) });
  }
  return { redirect: '/manage/policies', flash: `Policy ${state.name} ${stored === undefined ? 'created' : 'saved'}${state.active ? '' : ' (inactive)'}: ${state.action}.` };
}

const param = (request: FastifyRequest, name: string) => String((request.params as Record<string, string>)[name] ?? '');

const notFound = (name: string): View => ({
  template: 'manage/stores-notfound', status: 404, data: { title: 'No such policy', message: `There is no policy named ${name}.`, back: '/manage/policies', backLabel: 'All policies' },
});

async function listView(call: PageCall, query: unknown): Promise<View> {
  const scope = queryText(query, 'scope');
  const realm = queryText(query, 'realm').trim();
  const q = queryText(query, 'q').trim();
  const all = await allPolicies(call);
  const shown = (scope || realm ? await allPolicies(call, { ...(scope ? { scope } : {}), ...(realm ? { realm } : {}) }) : all)
    .filter((p) => !q || [p.name, p.action, p.user, p.client].some((v) => v.toLowerCase().includes(q.toLowerCase())));
  const list = listPage(shown, query, '/manage/policies', { scope, realm, q }, {
    name: { label: 'Name', value: (p) => p.name },
    scope: { label: 'Scope', value: (p) => p.scope },
    action: { label: 'Action', value: (p) => p.action },
    realm: { label: 'Realm', value: (p) => p.realm },
    user: { label: 'User', value: (p) => p.user },
    client: { label: 'Client', value: (p) => p.client },
    time: { label: 'Time', value: (p) => p.time },
    active: { label: 'Active', value: (p) => (p.active === 'False' ? 1 : 0) },
  });
  const defs = await policyDefs(call);
  return {
    template: 'manage/policies',
    data: { title: 'Policies', list, scope, realm, q, scopes: Object.keys(defs), any: all.length > 0, href: policyHref },
  };
}

/** The export as a download: `/system/getPolicy export=true` with the inactive policies too. */
async function exportFile(kit: ManageKit, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const session = await pageSession(kit.services, request);
  if (!session) return reply.redirect(`/manage/login?next=${encodeURIComponent('/manage/policies/export')}`, 303);
  try {
    const result = await invokeRoute(kit.app, kit.services, '/system/getPolicy', { admin: session.admin, params: { export: 'true', display_inactive: 'true' }, request, reply });
    const body = result.kind === 'json' ? '' : String(result.body);
    return reply.code(200).type('text/plain; charset=utf-8').header('Content-Disposition', 'attachment; filename="policy.cfg"').header('Cache-Control', 'no-store').send(body);
  } catch (e) {
    if (!(e instanceof OtpdError)) throw e;
    return renderPage(reply, 'manage/stores-notfound', kit.layout(request, reply, session, {
      title: 'Not allowed', message: `${e.message[0]!.toUpperCase()}${e.message.slice(1)}.`, back: '/manage/policies', backLabel: 'Policies',
    }), e.code === Errors.notAllowed.code ? 403 : 400);
  }
}

function importView(file: string, problem?: string): View {
  return { template: 'manage/policies-import', data: { title: 'Import policies', file, problem } };
}

/** The names in a policy file, for the message after the import ('' when it does not parse). */
function namesIn(file: string): string {
  try {
    return parsePolicyFile(file).map((p) => p.name).join(', ');
  } catch {
    return '';
  }
}

export function registerPolicies(kit: ManageKit): void {
  const { app } = kit;

  app.get('/manage/policies', kit.page(orRefusal(async (call, request) => listView(call, request.query))));

  app.get('/manage/policies/new', kit.page(orRefusal(async (call, request) => {
    const scope = queryText(request.query, 'scope') || 'authentication';
    return formView(call, { name: '', scope, action: '', realm: '*', user: '*', client: '*', time: '', active: true });
  })));
  app.post('/manage/policies/new', kit.form(
    async (call, body) => submit(call, body),
    async (call, body, error) => formView(call, { ...postedState(body, []).state, problems: problemOf(error, [], false) }),
  ));

  app.get('/manage/policies/import', kit.page(orRefusal(async () => importView(''))));
  app.post('/manage/policies/import', kit.form(
    async (call, body) => {
      const file = body.file ?? '';
      const { value: count, detail } = await call.answer('/system/importPolicy', { file });
      const refused = (detail?.refused ?? []) as { name: string; reason: string }[];
      const imported = (detail?.imported ?? []) as string[];
      const names = imported.length ? imported.join(', ') : namesIn(file);
      const done = `${String(count)} ${count === 1 ? 'policy' : 'policies'} imported${count !== 0 && names ? `: ${names}` : ''}.`;
      const left = refused.map((r) => ` Refused ${r.name}: ${r.reason}.`).join('');
      return { redirect: '/manage/policies', flash: `${done}${left}` };
    },
    async (_call, body, error) => importView(body.file ?? '', `${error.message[0]!.toUpperCase()}${error.message.slice(1)}`),
  ));

  app.get('/manage/policies/export', (request, reply) => exportFile(kit, request, reply));

  registerSimulator(kit);

  const edit = (pathOf: string) => {
    app.get(pathOf, kit.page(orRefusal(async (call, request) => {
      const p = await storedPolicy(call, param(request, 'name'));
      return p ? formView(call, stateOf(p)) : notFound(param(request, 'name'));
    })));
    app.post(pathOf, kit.form(
      async (call, body, request) => {
        const name = param(request, 'name');
        if (!(await storedPolicy(call, name))) return notFound(name);
        return submit(call, body, name);
      },
      async (call, body, error, request) => formView(call, { ...postedState(body, [], param(request, 'name')).state, problems: problemOf(error, [], false) }),
    ));
  };
  edit('/manage/policies/:name');
  edit('/manage/policies/edit/:name');

  app.post('/manage/policies/:name/delete', kit.form(
    async (call, body, request) => {
      const name = param(request, 'name');
      const p = await storedPolicy(call, name);
      if (!p) return notFound(name);
      if (body.confirmed !== 'yes') return { template: 'manage/policies-delete', data: { title: `Delete policy ${name}?`, policy: p, href: policyHref(name) } };
      await call.api('/system/delPolicy', { name });
      return { redirect: '/manage/policies', flash: `Policy ${name} deleted.` };
    },
    async (call, _body, error, request) => {
      const p = await storedPolicy(call, param(request, 'name'));
      if (!p) return notFound(param(request, 'name'));
      return formView(call, { ...stateOf(p), problems: [{ text: `Not deleted: ${error.message}` }] });
    },
  ));
}
