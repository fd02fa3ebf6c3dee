import type { FastifyRequest } from 'fastify';
import type { OtpdError } from '../../errors.ts';
import type { ManageKit, View } from './kit.ts';
import { listPage, queryText } from './list-view.ts';
import { formHandingOver, pageTakingOver } from './once.ts';
import { orRefusal } from './refusal.ts';
import type { PageCall } from './session.ts';

/**
 * Administrators and API keys (`/manage/admins`): the local administrators (`/admin/admins/list`)
 * with a form for a new one (name, password typed twice, never shown again), an admin's page
 * with its API keys (`/admin/apikey/list`: label, prefix, state, times; never a key), a form for
 * a new key whose key is shown once on the page after it (handed over sealed, see once.ts),
 * revoking a key and deleting an administrator, each confirmed naming the object.
 */

interface AdminRow { name: string; created: string; activeApiKeys: number }
interface KeyRow { id: number; admin: string; label: string; prefix: string; state: string; created: string; expires: string | null; lastUsed: string | null; revoked: string | null }

const param = (request: FastifyRequest, name: string) => String((request.params as Record<string, string>)[name] ?? '');
const adminPath = (name: string) => `/manage/admins/${encodeURIComponent(name)}`;
const purpose = (name: string) => `apikey:${name}`;
const sentence = (text: string) => `${text[0]!.toUpperCase()}${text.slice(1)}${/[.!?]$/.test(text) ? '' : '.'}`;

async function admins(call: PageCall): Promise<AdminRow[]> {
  return (await call.api('/admin/admins/list')) as AdminRow[];
}

async function keysOf(call: PageCall, name: string): Promise<KeyRow[]> {
  return ((await call.api('/admin/apikey/list', { admin: name })) as KeyRow[]).sort((a, b) => b.id - a.id);
}

type NewAdminField = 'name' | 'password' | 'again';

interface NewAdminForm { name: string; field?: NewAdminField; error?: string }

async function listView(call: PageCall, query: unknown, form: NewAdminForm): Promise<View> {
  const all = await admins(call);
  const q = queryText(query, 'q').trim().toLowerCase();
  const list = listPage(all.filter((a) => !q || a.name.toLowerCase().includes(q)), query, '/manage/admins', { q }, {
    name: { label: 'Name', value: (a) => a.name },
    created: { label: 'Created', value: (a) => a.created },
    keys: { label: 'Active API keys', value: (a) => a.activeApiKeys },
  });
  return { template: 'manage/admins', data: { title: 'Administrators', list, q: queryText(query, 'q'), form, me: call.session.admin.name } };
}

/** Where a refusal of `/admin/admins/create` belongs. */
function newAdminProblem(error: OtpdError): { field?: NewAdminField; error: string } {
  const m = /^Invalid parameter '(name|password)': (.*)$/s.exec(error.message);
  if (m) return { field: m[1] as NewAdminField, error: sentence(m[1] === 'name' ? m[2]!.replace(/^'[^']*': /, '') : `the password ${m[2]}`) };
  if (/^admin '.*' exists already$/.test(error.message)) return { field: 'name', error: sentence(error.message.replace(/^admin/, 'an administrator')) };
  return { error: sentence(error.message) };
}

interface KeyForm { label: string; expires: string; field?: 'label' | 'expires'; error?: string }

async function adminView(call: PageCall, name: string, keyForm: KeyForm = { label: '', expires: '' }, problem?: string): Promise<View> {
  const admin = (await admins(call)).find((a) => a.name === name);
  if (!admin) {
    return { template: 'manage/stores-notfound', status: 404, data: { title: 'No such administrator', message: `There is no administrator named ${name}.`, back: '/manage/admins', backLabel: 'All administrators' } };
  }
  const keys = await keysOf(call, name);
  return { template: 'manage/admins-show', data: { title: `Administrator ${name}`, person: admin, keys, keyForm, problem, self: name === call.session.admin.name } };
}

export function registerAdmins(kit: ManageKit): void {
  const { app } = kit;

  app.get('/manage/admins', kit.page(orRefusal(async (call, request) => listView(call, request.query, { name: '' }))));

  app.post('/manage/admins', kit.form(
    async (call, body) => {
      const name = (body.name ?? '').trim();
      if ((body.password ?? '') !== (body.again ?? '')) return listView(call, {}, { name, field: 'again', error: 'The two passwords differ: type the same password twice.' });
      await call.api('/admin/admins/create', { name, password: body.password ?? '' });
      return { redirect: adminPath(name), flash: `Administrator ${name} created. Without an admin policy every administrator may do everything.` };
    },
    async (call, body, error) => listView(call, {}, { name: (body.name ?? '').trim(), ...newAdminProblem(error) }),
  ));

  app.get('/manage/admins/:name', kit.page(orRefusal(async (call, request) => adminView(call, param(request, 'name')))));

  app.post('/manage/admins/:name/keys', formHandingOver(kit,
    async (call, body, request, hand) => {
      const name = param(request, 'name');
      const made = (await call.api('/admin/apikey/create', { admin: name, label: (body.label ?? '').trim(), ...(body.expires?.trim() ? { expires: body.expires.trim() } : {}) })) as { id: number; key: string };
      hand(purpose(name), made.key);
      return { redirect: `${adminPath(name)}/key`, flash: `API key ${made.id} created for ${name}.` };
    },
    async (call, body, error, request) => {
      const m = /^Invalid parameter '(label|expires)': (.*)$/s.exec(error.message);
      const keyForm: KeyForm = { label: body.label ?? '', expires: body.expires ?? '', ...(m ? { field: m[1] as 'label' | 'expires', error: sentence(m[2]!) } : {}) };
      return adminView(call, param(request, 'name'), keyForm, m ? undefined : `Not created: ${error.message}`);
    },
  ));

  app.get('/manage/admins/:name/key', pageTakingOver(kit, (request) => purpose(param(request, 'name')), async (_call, request, key) => {
    const name = param(request, 'name');
    return { template: 'manage/admins-key', data: { title: `New API key of ${name}`, name, key, href: adminPath(name) } };
  }));

  app.post('/manage/admins/:name/keys/:id/revoke', kit.form(
    async (call, body, request) => {
      const name = param(request, 'name');
      const id = param(request, 'id');
      const key = (await keysOf(call, name)).find((k) => String(k.id) === id);
      if (!key) return adminView(call, name, undefined, `${name} has no API key ${id}.`);
      const what = `API key ${key.id}${key.label ? ` (${key.label})` : ''} of ${name}`;
      if (body.confirmed !== 'yes') return { template: 'manage/admins-revoke', data: { title: `Revoke ${what}?`, name, key, what } };
      await call.api('/admin/apikey/revoke', { id });
      return { redirect: adminPath(name), flash: `${what} revoked: otpd refuses it from now on.` };
    },
    async (call, _body, error, request) => adminView(call, param(request, 'name'), undefined, `Not revoked: ${error.message}`),
  ));

  app.post('/manage/admins/:name/delete', kit.form(
    async (call, body, request) => {
      const name = param(request, 'name');
      const view = await adminView(call, name);
      if (view.status === 404) return view;
      if (body.confirmed !== 'yes') return { template: 'manage/admins-delete', data: { title: `Delete administrator ${name}?`, name, keys: (view.data.keys as KeyRow[]).filter((k) => k.state === 'active').length } };
      await call.api('/admin/admins/delete', { name });
      return { redirect: '/manage/admins', flash: `Administrator ${name} deleted, with its sessions and API keys.` };
    },
    async (call, _body, error, request) => adminView(call, param(request, 'name'), undefined, `Not deleted: ${sentence(error.message)}`),
  ));
}
