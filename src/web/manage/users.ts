import type { FastifyRequest } from 'fastify';
import { OtpdError } from '../../errors.ts';
import type { ManageKit, View } from './kit.ts';
import { listPage, queryText } from './list-view.ts';
import { orRefusal } from './refusal.ts';
import type { PageCall } from './session.ts';
import { asRecord, attributeRows } from './stores.ts';

/**
 * Users (`/manage/users`): pick a realm, search its user stores (`/admin/userlist`, the
 * admin's realm restrictions apply), a sortable, paged table; a user's page with the
 * attributes the store has (mobile, mail, …) and the user's tokens (`/admin/show`), each
 * linking to its token page. A user store that cannot be asked says so on the page.
 */

/** `/admin/userlist` answers at most this many users; more means "narrow the search". */
const USERLIST_CAP = 1000;
/** The search fields of the form (LinOTP's userlist parameter names). */
const SEARCH = ['username', 'email', 'mobile', 'surname'] as const;

interface UserRow { username: string; givenname: string; surname: string; email: string; mobile: string; phone: string; resolver: string }

/** A search term as a userlist pattern: `*` stays a wildcard; without one the term matches anywhere. */
const pattern = (term: string) => (term.includes('*') ? term : `*${term}*`);

const resolverName = (spec: string) => spec.split('.').pop() ?? spec;

/** `/admin/show`'s date text as ISO (the page shows it in the browser's time zone), '' when there is none. */
const toIso = (text: string) => (text && !Number.isNaN(Date.parse(text)) ? new Date(text).toISOString() : '');

async function realmNames(call: PageCall): Promise<{ names: string[]; defaultRealm?: string; stores: Record<string, string[]> }> {
  const realms = asRecord(await call.api('/system/getRealms'));
  const names = Object.keys(realms).sort();
  const defaultRealm = names.find((n) => asRecord(realms[n]).default === 'true');
  const stores = Object.fromEntries(names.map((n) => [n, ((asRecord(realms[n]).useridresolver as string[] | undefined) ?? []).map(resolverName)]));
  return { names, ...(defaultRealm ? { defaultRealm } : {}), stores };
}

export const userHref = (realm: string, login: string) => `/manage/users/${encodeURIComponent(realm)}/${encodeURIComponent(login)}`;

const param = (request: FastifyRequest, name: string) => String((request.params as Record<string, string>)[name] ?? '');

async function searchView(call: PageCall, query: unknown): Promise<View> {
  const { names, defaultRealm, stores } = await realmNames(call);
  const asked = queryText(query, 'realm').toLowerCase();
  const realm = names.includes(asked) ? asked : defaultRealm ?? names[0] ?? '';
  const terms = Object.fromEntries(SEARCH.map((f) => [f, queryText(query, f).trim()])) as Record<(typeof SEARCH)[number], string>;
  const resolver = (stores[realm] ?? []).includes(queryText(query, 'resolver')) ? queryText(query, 'resolver') : '';
  let rows: UserRow[] = [];
  let error: string | undefined;
  if (realm) {
    const params: Record<string, string> = { realm, username: terms.username ? pattern(terms.username) : '*' };
    for (const f of SEARCH) if (f !== 'username' && terms[f]) params[f] = pattern(terms[f]);
    if (resolver) params.resConf = resolver;
    try {
      const found = await call.api('/admin/userlist', params);
      rows = (Array.isArray(found) ? found : []).map((u) => {
        const r = asRecord(u) as Record<string, string>;
        return {
          username: r.username ?? '', givenname: r.givenname ?? '', surname: r.surname ?? '', email: r.email ?? '',
          mobile: r.mobile ?? '', phone: r.phone ?? '', resolver: resolverName(r.useridresolver ?? ''),
        };
      });
    } catch (e) {
      if (!(e instanceof OtpdError)) throw e;
      error = e.message;
    }
  }
  const keep = { realm: realm === defaultRealm ? '' : realm, ...terms, resolver };
  const list = listPage(rows, query, '/manage/users', keep, {
    username: { label: 'Login', value: (r) => r.username },
    givenname: { label: 'Given name', value: (r) => r.givenname },
    surname: { label: 'Surname', value: (r) => r.surname },
    email: { label: 'E-mail', value: (r) => r.email },
    mobile: { label: 'Mobile', value: (r) => r.mobile },
    resolver: { label: 'User store', value: (r) => r.resolver },
  });
  return {
    template: 'manage/users',
    data: {
      title: 'Users', realms: names, realm, defaultRealm, terms, resolver, stores: stores[realm] ?? [], list, error,
      capped: rows.length >= USERLIST_CAP, searched: Object.values(terms).some(Boolean) || resolver !== '',
      userHref: (login: string) => userHref(realm, login),
    },
  };
}

const missing = (realm: string, login: string, message?: string): View => ({
  template: 'manage/stores-notfound', status: 404,
  data: { title: 'No such user', message: message ?? `The realm ${realm} has no user ${login}.`, back: `/manage/users?realm=${encodeURIComponent(realm)}`, backLabel: `Users of ${realm}` },
});

async function userView(call: PageCall, realm: string, login: string): Promise<View> {
  let found: unknown;
  try {
    found = await call.api('/admin/userlist', { realm, username: login });
  } catch (e) {
    if (!(e instanceof OtpdError)) throw e;
    // an unknown or forbidden realm names no user; an unreachable store is said as such
    if (e.code === 2004) return { template: 'manage/users-show', data: { title: `User ${login}`, realm, login, error: e.message, attributes: [], tokens: [] } };
    return missing(realm, login, `${e.message[0]!.toUpperCase()}${e.message.slice(1)}.`);
  }
  // a `*` in a login is a wildcard to userlist: only the exact login is this user
  const user = (Array.isArray(found) ? found : []).map((u) => asRecord(u)).find((u) => u.username === login);
  if (!user) return missing(realm, login);
  const { useridresolver, ...info } = user as Record<string, string>;
  let shown: Record<string, unknown> = {};
  let tokensError: string | undefined;
  try {
    shown = asRecord(await call.api('/admin/show', { user: login, realm, pagesize: '100' }));
  } catch (e) {
    if (!(e instanceof OtpdError)) throw e;
    tokensError = e.message;
  }
  const tokens = (Array.isArray(shown.data) ? shown.data : []).map((t) => {
    const r = asRecord(t);
    return {
      serial: String(r['LinOtp.TokenSerialnumber'] ?? ''), type: String(r['LinOtp.TokenType'] ?? ''), active: r['LinOtp.Isactive'] === true,
      description: String(r['LinOtp.TokenDesc'] ?? ''), failCount: Number(r['LinOtp.FailCount'] ?? 0), maxFail: Number(r['LinOtp.MaxFail'] ?? 0),
      created: toIso(String(r['LinOtp.CreationDate'] ?? '')),
    };
  });
  const total = Number(asRecord(shown.resultset).tokens ?? tokens.length);
  return {
    template: 'manage/users-show',
    data: {
      title: `User ${login}`, realm, login, attributes: attributeRows(info), resolver: resolverName(useridresolver ?? ''), spec: useridresolver ?? '',
      tokens, total, tokensError,
    },
  };
}

export function registerUsers(kit: ManageKit): void {
  kit.app.get('/manage/users', kit.page(orRefusal(async (call, request) => searchView(call, request.query))));
  kit.app.get('/manage/users/:realm/:login', kit.page(orRefusal(async (call, request) => userView(call, param(request, 'realm').toLowerCase(), param(request, 'login')))));
}
