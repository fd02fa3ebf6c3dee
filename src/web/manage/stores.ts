import type { FastifyRequest } from 'fastify';
import type { OtpdError } from '../../errors.ts';
import type { ManageKit, View, Done } from './kit.ts';
import { listPage, queryText } from './list-view.ts';
import { orRefusal } from './refusal.ts';
import type { PageCall } from './session.ts';
import { refusalProblem, testProblems, type Problem } from './store-errors.ts';
import {
  apiConfig, isStoreType, labelOf, newValues, postedValues, presetValues, STORE_TYPES, storedValues, storeForm,
  type FormValues, type SecretsSet, type StoreType,
} from './store-forms.ts';

/**
 * User stores (`/manage/resolvers`): the list with each store's type and the realms that use
 * it; a form per type (LDAP/AD with the OpenLDAP and Active Directory presets, SQL, flat
 * file); "Test connection" and "Look up one user" with the form's current values
 * (`/system/testResolver`: steps, user count, the attributes found), failures in plain words
 * next to the field they concern; delete, refused with the API's message while a realm uses
 * the store. Every read and write is the API route's, called in-process.
 */

export const asRecord = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

/** The user fields of otpd with their plain names, in the order a user's page shows them. */
export const USER_FIELDS: Record<string, string> = {
  username: 'Login name', userid: 'User id', givenname: 'Given name', surname: 'Surname', email: 'E-mail',
  mobile: 'Mobile', phone: 'Phone', description: 'Description',
};

/** A user's attributes as [label, key, value] rows, known fields first. */
export function attributeRows(info: Record<string, unknown>): { label: string; key: string; value: string }[] {
  const keys = [...Object.keys(USER_FIELDS).filter((k) => k in info), ...Object.keys(info).filter((k) => !(k in USER_FIELDS)).sort()];
  return keys.filter((k) => info[k] !== undefined && info[k] !== '').map((k) => ({ label: USER_FIELDS[k] ?? k, key: k, value: String(info[k]) }));
}

interface ResolverRow { name: string; type: string; typeLabel: string; spec: string; realms: string[] }

/** Resolvers with the realms using each (realms as the admin may see them). */
export async function resolverRows(call: PageCall): Promise<ResolverRow[]> {
  const resolvers = asRecord(await call.api('/system/getResolvers'));
  const realms = asRecord(await call.api('/system/getRealms'));
  return Object.entries(resolvers).map(([name, r]) => {
    const { type, spec } = asRecord(r) as { type: string; spec: string };
    const using = Object.entries(realms).filter(([, realm]) => ((asRecord(realm).useridresolver as string[] | undefined) ?? []).includes(spec)).map(([n]) => n).sort();
    return { name, type, typeLabel: isStoreType(type) ? STORE_TYPES[type].short : type, spec, realms: using };
  });
}

/** What the result panel of a connection test shows. */
interface TestView {
  ok: boolean;
  steps: string[];
  userCount?: number;
  sample: { label: string; key: string; value: string }[];
  lookup?: string;
  /** The looked-up user's attributes; null when the store does not know the login. */
  user?: { label: string; key: string; value: string }[] | null;
  lookupError?: string;
  problems: Problem[];
}

interface FormState {
  type: StoreType;
  /** The stored name when editing. */
  stored?: string;
  name: string;
  values: FormValues;
  secrets: SecretsSet;
  problems?: Problem[];
  test?: TestView;
  /** A password was typed and is not sent back: say so next to the field. */
  retype?: string[];
  lookup?: string;
  realms?: string[];
}

function formView(s: FormState, status?: number): View {
  const fieldErrors: Record<string, string> = {};
  for (const p of [...(s.problems ?? []), ...(s.test?.problems ?? [])]) if (p.field && !fieldErrors[p.field]) fieldErrors[p.field] = p.text;
  const form = storeForm(s.type);
  const editing = s.stored !== undefined;
  return {
    template: 'manage/stores-form',
    status,
    data: {
      title: editing ? `User store ${s.stored}` : `New ${STORE_TYPES[s.type].label} user store`,
      editing, stored: s.stored, type: s.type, typeLabel: STORE_TYPES[s.type].label, form, name: s.name,
      values: s.values, secrets: s.secrets, problems: s.problems ?? [], fieldErrors, test: s.test, retype: s.retype ?? [],
      lookup: s.lookup ?? '', realms: s.realms ?? [],
      action: editing ? `/manage/resolvers/${encodeURIComponent(s.stored!)}` : `/manage/resolvers/new/${s.type}`,
      presets: s.type === 'ldapresolver' ? { openldap: JSON.stringify(presetValues('openldap')), ad: JSON.stringify(presetValues('ad')) } : undefined,
      summaryLabel: (field: string) => labelOf(s.type, field),
    },
  };
}

const notFound = (title: string, message: string): View => ({
  template: 'manage/stores-notfound', status: 404, data: { title, message, back: '/manage/resolvers', backLabel: 'All user stores' },
});

/** The stored resolver as the API describes it, or undefined. */
async function storedResolver(call: PageCall, name: string): Promise<{ type: StoreType; values: FormValues; secrets: SecretsSet } | undefined> {
  const r = asRecord(await call.api('/system/getResolver', { resolver: name }));
  if (typeof r.type !== 'string' || !isStoreType(r.type)) return undefined;
  return { type: r.type, ...storedValues(r.type, asRecord(r.data) as Record<string, string>) };
}

async function realmsUsing(call: PageCall, name: string): Promise<string[]> {
  return (await resolverRows(call)).find((r) => r.name === name)?.realms ?? [];
}

function testView(type: StoreType, raw: Record<string, unknown>, values: FormValues, lookup: string): TestView {
  const ok = raw.result === 'success';
  return {
    ok,
    steps: Array.isArray(raw.steps) ? raw.steps.map(String) : [],
    ...(typeof raw.usercount === 'number' ? { userCount: raw.usercount } : {}),
    sample: raw.sample ? attributeRows(asRecord(raw.sample)) : [],
    ...(lookup ? { lookup } : {}),
    ...('user' in raw ? { user: raw.user === null ? null : attributeRows(asRecord(raw.user)) } : {}),
    ...(typeof raw.lookupError === 'string' ? { lookupError: raw.lookupError } : {}),
    problems: ok ? [] : testProblems(type, String(raw.error ?? 'the test failed'), values),
  };
}

/** Save, test, look up or fill a preset: what one post of the form does. */
async function submit(call: PageCall, body: Record<string, string>, type: StoreType, stored?: string): Promise<Done | View> {
  const before = stored === undefined ? undefined : await storedResolver(call, stored);
  if (stored !== undefined && !before) return notFound('No such user store', `There is no user store named ${stored}.`);
  const secrets = before?.secrets ?? {};
  const values = postedValues(type, body);
  const name = (body.name ?? '').trim();
  const action = body.action ?? 'save';
  const lookup = (body.lookup ?? '').trim();
  const typed = storeForm(type).groups.flatMap((g) => g.fields).filter((f) => f.kind === 'password' && (body[f.key] ?? '') !== '').map((f) => f.key);
  const state: FormState = { type, stored, name, values, secrets, retype: typed, lookup, realms: stored ? await realmsUsing(call, stored) : [] };
  if (action === 'preset:openldap' || action === 'preset:ad') {
    return formView({ ...state, values: { ...values, ...presetValues(action === 'preset:ad' ? 'ad' : 'openldap') } });
  }
  const config = apiConfig(type, body, secrets);
  if ('field' in config) return formView({ ...state, problems: [{ text: config.message, field: config.field, detail: config.message }] });
  if (action === 'test' || action === 'lookup') {
    const raw = asRecord(await call.api('/system/testResolver', {
      name: stored ?? (name || 'test'), type, ...config, ...(action === 'lookup' && lookup ? { username: lookup } : {}),
    }));
    return formView({ ...state, test: testView(type, raw, values, action === 'lookup' ? lookup : '') });
  }
  await call.api('/system/setResolver', { name, type, ...config, ...(stored !== undefined ? { previous_name: stored } : {}) });
  const flash = stored === undefined
    ? `User store ${name} created. Next: put it in a realm.`
    : stored !== name ? `User store ${stored} renamed to ${name} and saved.` : `User store ${name} saved.`;
  return { redirect: '/manage/resolvers', flash };
}

/** A refusal of the API (bad value, name taken, …) shown next to its field; the form keeps what was typed. */
async function refused(call: PageCall, body: Record<string, string>, error: OtpdError, type: StoreType, stored?: string): Promise<View> {
  const before = stored === undefined ? undefined : await storedResolver(call, stored);
  const values = postedValues(type, body);
  const typed = storeForm(type).groups.flatMap((g) => g.fields).filter((f) => f.kind === 'password' && (body[f.key] ?? '') !== '').map((f) => f.key);
  return formView({
    type, stored, name: (body.name ?? '').trim(), values, secrets: before?.secrets ?? {}, retype: typed, lookup: (body.lookup ?? '').trim(),
    realms: stored ? await realmsUsing(call, stored) : [], problems: [refusalProblem(type, error.message, values)],
  });
}

const param = (request: FastifyRequest, name: string) => String((request.params as Record<string, string>)[name] ?? '');

export function registerStores(kit: ManageKit): void {
  const { app } = kit;

  app.get('/manage/resolvers', kit.page(orRefusal(async (call, request) => {
    const q = queryText(request.query, 'q').trim();
    const type = queryText(request.query, 'type');
    const all = await resolverRows(call);
    const shown = all.filter((r) => (!q || r.name.toLowerCase().includes(q.toLowerCase())) && (!type || r.type === type));
    const list = listPage(shown, request.query, '/manage/resolvers', { q, type }, {
      name: { label: 'Name', value: (r) => r.name },
      type: { label: 'Type', value: (r) => r.typeLabel },
      realms: { label: 'Used by realms', value: (r) => r.realms.join(', ') },
    });
    return { template: 'manage/stores', data: { title: 'User stores', list, q, type, types: STORE_TYPES, any: all.length > 0 } };
  })));

  app.get('/manage/resolvers/new/:type', kit.page(orRefusal(async (_call, request) => {
    const type = param(request, 'type');
    if (!isStoreType(type)) return notFound('No such user store type', `otpd has no user store type ${type}: choose LDAP, SQL or a flat file.`);
    const preset = queryText(request.query, 'preset') === 'ad' ? 'ad' : 'openldap';
    return formView({ type, name: '', values: newValues(type, preset), secrets: {} });
  })));

  app.post('/manage/resolvers/new/:type', kit.form(
    async (call, body, request) => {
      const type = param(request, 'type');
      if (!isStoreType(type)) return notFound('No such user store type', `otpd has no user store type ${type}.`);
      return submit(call, body, type);
    },
    async (call, body, error, request) => refused(call, body, error, param(request, 'type') as StoreType),
  ));

  app.get('/manage/resolvers/:name', kit.page(orRefusal(async (call, request) => {
    const name = param(request, 'name');
    const stored = await storedResolver(call, name);
    if (!stored) return notFound('No such user store', `There is no user store named ${name}.`);
    return formView({ ...stored, stored: name, name, realms: await realmsUsing(call, name) });
  })));

  app.post('/manage/resolvers/:name', kit.form(
    async (call, body, request) => {
      const name = param(request, 'name');
      const stored = await storedResolver(call, name);
      if (!stored) return notFound('No such user store', `There is no user store named ${name}.`);
      return submit(call, body, stored.type, name);
    },
    async (call, body, error, request) => {
      const name = param(request, 'name');
      const stored = await storedResolver(call, name);
      return refused(call, body, error, stored?.type ?? 'ldapresolver', name);
    },
  ));

  app.post('/manage/resolvers/:name/delete', kit.form(
    async (call, body, request) => {
      const name = param(request, 'name');
      if (body.confirmed !== 'yes') {
        const stored = await storedResolver(call, name);
        if (!stored) return notFound('No such user store', `There is no user store named ${name}.`);
        return { template: 'manage/stores-delete', data: { title: `Delete user store ${name}?`, name, realms: await realmsUsing(call, name) } };
      }
      const deleted = await call.api('/system/delResolver', { resolver: name });
      return { redirect: '/manage/resolvers', flash: deleted === true ? `User store ${name} deleted.` : `There was no user store named ${name}.` };
    },
    async (call, _body, error, request) => {
      const name = param(request, 'name');
      const stored = await storedResolver(call, name);
      if (!stored) return notFound('No such user store', `There is no user store named ${name}.`);
      return formView({ ...stored, stored: name, name, realms: await realmsUsing(call, name), problems: [{ text: `Not deleted: ${error.message}`, detail: '' }] });
    },
  ));
}
