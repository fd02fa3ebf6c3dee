import type { FastifyRequest } from 'fastify';
import type { OtpdError } from '../../errors.ts';
import type { ManageKit, View } from './kit.ts';
import { listPage, queryText } from './list-view.ts';
import { orRefusal } from './refusal.ts';
import type { PageCall } from './session.ts';
import { asRecord } from './stores.ts';
import { STORE_TYPES, isStoreType } from './store-forms.ts';

/**
 * Realms (`/manage/realms`): the list with each realm's user stores (in lookup order) and the
 * default mark; a new realm's form on the list page; a realm's page to choose its user
 * stores (checkboxes, with their order), make it the default, or delete it (confirmed).
 * Reads and writes are the API's `/system/getRealms`, `setRealm`, `setDefaultRealm`,
 * `delRealm`, called in-process.
 */

interface StoreChoice { name: string; spec: string; typeLabel: string }
interface RealmRow { name: string; stores: string[]; isDefault: boolean }

async function facts(call: PageCall): Promise<{ realms: RealmRow[]; stores: StoreChoice[] }> {
  const resolvers = asRecord(await call.api('/system/getResolvers'));
  const stores = Object.entries(resolvers).map(([name, r]) => {
    const { spec, type } = asRecord(r) as { spec: string; type: string };
    return { name, spec, typeLabel: isStoreType(type) ? STORE_TYPES[type].short : type };
  });
  const nameOf = (spec: string) => stores.find((s) => s.spec === spec)?.name ?? spec.split('.').pop() ?? spec;
  const realms = Object.entries(asRecord(await call.api('/system/getRealms'))).map(([name, r]) => {
    const realm = asRecord(r);
    return { name, stores: ((realm.useridresolver as string[] | undefined) ?? []).map(nameOf), isDefault: realm.default === 'true' };
  });
  return { realms, stores };
}

/** The user stores of the form in the chosen order: checked ones by their position field, then page order. */
function chosenStores(body: Record<string, string>, stores: StoreChoice[]): string[] {
  return stores
    .map((s, i) => ({ name: s.name, i, pos: Number.parseInt(body[`pos.${s.name}`] ?? '', 10) }))
    .filter((s) => body[`use.${s.name}`] === 'yes')
    .sort((a, b) => (Number.isFinite(a.pos) ? a.pos : 1e6) - (Number.isFinite(b.pos) ? b.pos : 1e6) || a.i - b.i)
    .map((s) => s.name);
}

/** Checkbox rows: the realm's stores first in their order, then the others. */
function choices(stores: StoreChoice[], selected: string[]) {
  const ordered = [...selected.map((n) => stores.find((s) => s.name === n)).filter((s): s is StoreChoice => !!s), ...stores.filter((s) => !selected.includes(s.name))];
  return ordered.map((s, i) => ({ ...s, checked: selected.includes(s.name), position: i + 1 }));
}

/** Where a refusal of setRealm belongs: the name or the store choice. */
function fieldOf(message: string): 'realm' | 'resolvers' | undefined {
  if (/'realm'/.test(message)) return 'realm';
  if (/'resolvers'|resolver/.test(message)) return 'resolvers';
  return undefined;
}

const plain = (message: string) => message
  .replace(/^Missing parameter: 'resolvers'$/, 'Choose at least one user store.')
  .replace(/^Invalid parameter 'realm': realm names have.*$/, 'A realm name has 1 to 64 characters: a-z, 0-9, _ . and -.');

const param = (request: FastifyRequest, name: string) => String((request.params as Record<string, string>)[name] ?? '');

async function listView(call: PageCall, query: unknown, form: { name: string; selected: string[]; error?: string; field?: string }): Promise<View> {
  const { realms, stores } = await facts(call);
  const q = queryText(query, 'q').trim().toLowerCase();
  const list = listPage(realms.filter((r) => !q || r.name.includes(q)), query, '/manage/realms', { q }, {
    name: { label: 'Realm', value: (r) => r.name },
    stores: { label: 'User stores (in lookup order)', value: (r) => r.stores.join(', ') },
    isDefault: { label: 'Default', value: (r) => (r.isDefault ? 0 : 1) },
  });
  return {
    template: 'manage/realms',
    data: { title: 'Realms', list, q: queryText(query, 'q'), any: realms.length > 0, stores, choices: choices(stores, form.selected), form },
  };
}

async function realmView(call: PageCall, name: string, selected?: string[], problem?: { error: string; field?: string }): Promise<View> {
  const { realms, stores } = await facts(call);
  const realm = realms.find((r) => r.name === name);
  if (!realm) return { template: 'manage/stores-notfound', status: 404, data: { title: 'No such realm', message: `There is no realm named ${name}.`, back: '/manage/realms', backLabel: 'All realms' } };
  return {
    template: 'manage/realms-form',
    data: { title: `Realm ${name}`, realm, choices: choices(stores, selected ?? realm.stores), problem },
  };
}

export function registerRealms(kit: ManageKit): void {
  const { app } = kit;

  app.get('/manage/realms', kit.page(orRefusal(async (call, request) => listView(call, request.query, { name: '', selected: [] }))));

  app.post('/manage/realms', kit.form(
    async (call, body) => {
      const name = (body.realm ?? '').trim().toLowerCase();
      const { stores, realms } = await facts(call);
      const selected = chosenStores(body, stores);
      if (name && realms.some((r) => r.name === name)) {
        return listView(call, {}, { name, selected, field: 'realm', error: `A realm named ${name} exists already: open it from the list to change it.` });
      }
      await call.api('/system/setRealm', { realm: name, resolvers: selected.join(',') });
      return { redirect: `/manage/realms`, flash: `Realm ${name} created with ${selected.join(', ')}.` };
    },
    async (call, body, error) => {
      const { stores } = await facts(call);
      return listView(call, {}, { name: body.realm ?? '', selected: chosenStores(body, stores), error: plain(error.message), field: fieldOf(error.message) });
    },
  ));

  app.get('/manage/realms/:realm', kit.page(orRefusal(async (call, request) => realmView(call, param(request, 'realm')))));

  app.post('/manage/realms/:realm', kit.form(
    async (call, body, request) => {
      const name = param(request, 'realm');
      const { stores, realms } = await facts(call);
      if (!realms.some((r) => r.name === name)) return realmView(call, name);
      const selected = chosenStores(body, stores);
      await call.api('/system/setRealm', { realm: name, resolvers: selected.join(',') });
      return { redirect: '/manage/realms', flash: `Realm ${name} saved: ${selected.join(', ')}.` };
    },
    async (call, body, error: OtpdError, request) => {
      const { stores } = await facts(call);
      return realmView(call, param(request, 'realm'), chosenStores(body, stores), { error: plain(error.message), field: fieldOf(error.message) });
    },
  ));

  app.post('/manage/realms/:realm/default', kit.form(
    async (call, _body, request) => {
      const name = param(request, 'realm');
      const set = await call.api('/system/setDefaultRealm', { realm: name });
      return { redirect: '/manage/realms', flash: set === true ? `Realm ${name} is now the default realm.` : `There is no realm named ${name}.` };
    },
    async (call, _body, error, request) => realmView(call, param(request, 'realm'), undefined, { error: error.message }),
  ));

  app.post('/manage/realms/:realm/delete', kit.form(
    async (call, body, request) => {
      const name = param(request, 'realm');
      if (body.confirmed !== 'yes') {
        const view = await realmView(call, name);
        if (view.status === 404) return view;
        return { template: 'manage/realms-delete', data: { title: `Delete realm ${name}?`, realm: (view.data as { realm: RealmRow }).realm } };
      }
      const result = asRecord(asRecord(await call.api('/system/delRealm', { realm: name })).delRealm).result;
      return { redirect: '/manage/realms', flash: result === true ? `Realm ${name} deleted.` : `There was no realm named ${name}.` };
    },
    async (call, _body, error, request) => realmView(call, param(request, 'realm'), undefined, { error: `Not deleted: ${error.message}` }),
  ));
}
