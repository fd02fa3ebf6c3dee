import type { FastifyRequest } from 'fastify';
import { OtpdError } from '../../errors.ts';
import type { ManageKit, View } from './kit.ts';
import type { PageCall } from './session.ts';
import {
  auditRows, ENROLL_FIELDS, ENROLL_TYPES, enrollmentSecret, fieldOf, initParams, keptInput, listHref, listQuery, paging,
  sentence, showParams, sortHeader, tokenView, typeLabel, type SortColumn, type TokenView,
} from './tokens-view.ts';

/**
 * The Tokens area of the management UI (`/manage/tokens`): the list (filter, realm, sort,
 * paging), enrollment (the otpauth URL and QR code of a generated seed shown once, in the
 * answer to the form), and a token's page with its facts, actions and audit rows. Every read
 * and every action is the JSON API's route called as the logged-in admin (`call.api`), so an
 * admin restricted to some realms sees and changes only their tokens, and each action is
 * audited exactly like the API call.
 */

/** A refusal next to the field it concerns (`field` undefined: the summary at the top only). */
interface Problem { form: string; field?: string; message: string }

const problemOf = (form: string, error: OtpdError, fields: Record<string, string>): Problem =>
  ({ form, field: fieldOf(error, fields), message: sentence(error.message) });

const serialOf = (request: FastifyRequest): string => String((request.params as { serial?: unknown }).serial ?? '');

/** The path of a token's page (a serial may hold `:` `@` `.`). */
export const tokenPath = (serial: string): string => `/manage/tokens/${encodeURIComponent(serial)}`;

async function readOrRefusal<T>(read: () => Promise<T>): Promise<{ value?: T; refused?: string }> {
  try {
    return { value: await read() };
  } catch (e) {
    if (!(e instanceof OtpdError)) throw e;
    return { refused: sentence(e.message) };
  }
}

/** The realm names for the realm fields (suggestions only: the API decides what an admin may use). */
async function realmNames(call: PageCall): Promise<string[]> {
  const { value } = await readOrRefusal(() => call.api('/system/getRealms'));
  return value && typeof value === 'object' ? Object.keys(value).sort() : [];
}

/** The token with this serial as the admin's `/admin/show` sees it (undefined: none, or not in the admin's realms). */
async function findToken(call: PageCall, serial: string): Promise<TokenView | undefined> {
  if (!serial) return undefined;
  const value = (await call.api('/admin/show', { serial, pagesize: '1' })) as { data?: Record<string, unknown>[] };
  const found = (value.data ?? []).map(tokenView).find((t) => t.serial === serial);
  return found;
}

const missing = (serial: string): View => ({ template: 'manage/tokens-missing', data: { title: 'Token not found', serial }, status: 404 });

// ---- the list ------------------------------------------------------------------------------

const COLUMNS: [SortColumn, string][] = [['serial', 'Serial'], ['type', 'Type'], ['user', 'User'], ['description', 'Description'], ['failcount', 'Fail count'], ['created', 'Created']];

async function listView(call: PageCall, request: FastifyRequest): Promise<View> {
  const query = listQuery(request.query);
  const show = (q: typeof query) => call.api('/admin/show', showParams(q)) as Promise<{ data?: Record<string, unknown>[]; resultset?: { tokens?: number; pages?: number } }>;
  let { value, refused } = await readOrRefusal(() => show(query));
  // a page past the end (the list shrank, or a hand-made link): the last page instead
  const pages = Number(value?.resultset?.pages ?? 1);
  if (value && (value.data ?? []).length === 0 && query.page > pages) {
    query.page = pages;
    ({ value, refused } = await readOrRefusal(() => show(query)));
  }
  const tokens = (value?.data ?? []).map(tokenView);
  const total = Number(value?.resultset?.tokens ?? 0);
  return {
    template: 'manage/tokens',
    data: {
      title: 'Tokens', query, tokens, total, refused,
      filtered: query.q !== '' || query.realm !== '',
      realms: await realmNames(call),
      headers: COLUMNS.map(([column, label]) => sortHeader(query, column, label)),
      paging: paging(query, total, tokens.length),
      clearHref: listHref({ ...query, q: '', realm: '', page: 1 }),
      tokenPath,
    },
  };
}

// ---- enrollment ----------------------------------------------------------------------------

const ENROLL_CHOICES = ENROLL_TYPES.map((type) => ({ type, label: typeLabel(type) }));

async function enrollView(call: PageCall, values: Record<string, string>, problem?: Problem): Promise<View> {
  return {
    template: 'manage/tokens-enroll',
    data: { title: 'Enroll a token', values: { type: 'hmac', otplen: '6', timestep: '30', ...values }, problem, types: ENROLL_CHOICES, realms: await realmNames(call) },
  };
}

async function enroll(call: PageCall, body: Record<string, string>): Promise<View | { redirect: string; flash: string }> {
  const params = initParams(body);
  // /admin/init with the serial of an existing token re-seeds that token (LinOTP): never from this form
  if (params.serial && (await findToken(call, params.serial))) {
    return enrollView(call, keptInput(body), {
      form: 'enroll', field: 'serial', message: `A token with serial ${params.serial} exists already: choose another serial, or leave the field empty to have one generated.`,
    });
  }
  const { detail } = await call.answer('/admin/init', params);
  const serial = String(detail?.serial ?? params.serial ?? '');
  const secret = enrollmentSecret(detail);
  const label = typeLabel(params.type ?? '').split(' (')[0];
  if (!secret) return { redirect: tokenPath(serial), flash: `Token ${serial} enrolled (${label})` };
  // the answer to this form is the only place the seed is ever shown: nothing keeps it
  return { template: 'manage/tokens-enrolled', data: { title: `Token ${serial} enrolled`, serial, type: label, secret, tokenHref: tokenPath(serial) } };
}

// ---- a token's page ------------------------------------------------------------------------

async function detailView(call: PageCall, serial: string, problem?: Problem, values: Record<string, string> = {}): Promise<View> {
  const token = await findToken(call, serial);
  if (!token) return missing(serial);
  const audit = await readOrRefusal(() => call.api('/audit/search', { serial, rp: '10', sortname: 'number', sortorder: 'desc' }));
  return {
    template: 'manage/tokens-detail',
    data: {
      title: `Token ${serial}`, token, problem, values, realms: await realmNames(call), actionPath: (name: string) => `${tokenPath(serial)}/${name}`,
      audit: audit.value === undefined ? undefined : auditRows(audit.value), auditRefused: audit.refused,
      oath: token.type === 'hmac' || token.type === 'totp',
    },
  };
}

/** One action of a token's page: the API call(s), and the flash message naming the token. */
interface TokenAction {
  name: string;
  /** API parameter → form field, for refusals next to the field. */
  fields?: Record<string, string>;
  run(call: PageCall, serial: string, body: Record<string, string>): Promise<string | View>;
}

/** A count-returning action (enable, disable, reset): 0 means the admin sees no such token. */
const counted = (name: string, path: string, done: (serial: string) => string): TokenAction => ({
  name,
  run: async (call, serial) => (Number(await call.api(path, { serial })) > 0 ? done(serial) : missing(serial)),
});

const ACTIONS: TokenAction[] = [
  counted('enable', '/admin/enable', (s) => `Token ${s} enabled`),
  counted('disable', '/admin/disable', (s) => `Token ${s} disabled`),
  counted('reset', '/admin/reset', (s) => `Fail counter of token ${s} reset`),
  {
    name: 'resync',
    fields: { otp1: 'otp1', otp2: 'otp2' },
    run: async (call, serial, body) => {
      if (!(await findToken(call, serial))) return missing(serial);
      const done = await call.api('/admin/resync', { serial, otp1: (body.otp1 ?? '').trim(), otp2: (body.otp2 ?? '').trim() });
      if (done === true) return `Token ${serial} resynchronised`;
      return detailView(call, serial, {
        form: 'resync', field: 'otp1', message: 'Not resynchronised: the two OTPs are not consecutive values of this token within its sync window. Generate two new OTPs one after the other and try again.',
      }, keptInput(body));
    },
  },
  {
    name: 'pin',
    fields: { pin: 'pin' },
    run: async (call, serial, body) => {
      if (!(await findToken(call, serial))) return missing(serial);
      if (!body.pin) return detailView(call, serial, { form: 'pin', field: 'pin', message: 'Type the new PIN.' });
      await call.api('/admin/set', { serial, pin: body.pin });
      return `PIN of token ${serial} set`;
    },
  },
  {
    name: 'set',
    fields: { description: 'description', phone: 'phone', email_address: 'email' },
    run: async (call, serial, body) => {
      const token = await findToken(call, serial);
      if (!token) return missing(serial);
      const params: Record<string, string> = {};
      const changed: string[] = [];
      if (body.description !== undefined && body.description.trim() !== token.description) {
        params.description = body.description.trim();
        changed.push('description');
      }
      if (token.type === 'sms' && body.phone !== undefined && body.phone.trim() !== (token.info.phone ?? '')) {
        params.phone = body.phone.trim();
        changed.push('phone number');
      }
      if (token.type === 'email' && body.email !== undefined && body.email.trim() !== (token.info.email_address ?? '')) {
        params.email_address = body.email.trim();
        changed.push('e-mail address');
      }
      if (changed.length === 0) return `Token ${serial} unchanged: nothing was different`;
      await call.api('/admin/set', { serial, ...params });
      return `Token ${serial}: ${changed.join(' and ')} set`;
    },
  },
  {
    name: 'assign',
    fields: { user: 'user', realm: 'realm' },
    run: async (call, serial, body) => {
      const user = (body.user ?? '').trim();
      const realm = (body.realm ?? '').trim();
      if (!(await findToken(call, serial))) return missing(serial);
      if (!user) return detailView(call, serial, { form: 'assign', field: 'user', message: 'Type the login name of the user.' }, keptInput(body));
      await call.api('/admin/assign', { serial, user, ...(realm ? { realm } : {}) });
      const owner = (await findToken(call, serial))?.owner;
      return `Token ${serial} assigned to ${owner || user}`;
    },
  },
  {
    name: 'unassign',
    run: async (call, serial) => {
      if (!(await findToken(call, serial))) return missing(serial);
      await call.api('/admin/unassign', { serial });
      return `Token ${serial} unassigned`;
    },
  },
];

/**
 * Removal: without `confirmed=1` (scripts off, or a hand-made post) the answer is a page that
 * asks once more, naming the serial; with scripts on, the page's dialog asked already.
 */
async function remove(call: PageCall, serial: string, body: Record<string, string>): Promise<View | { redirect: string; flash: string }> {
  const token = await findToken(call, serial);
  if (!token) return missing(serial);
  if (body.confirmed !== '1') return { template: 'manage/tokens-remove', data: { title: `Remove token ${serial}?`, token, action: `${tokenPath(serial)}/remove`, back: tokenPath(serial) } };
  if (Number(await call.api('/admin/remove', { serial })) === 0) return missing(serial);
  return { redirect: '/manage/tokens', flash: `Token ${serial} removed` };
}

export function registerTokens(kit: ManageKit): void {
  const { app } = kit;
  app.get('/manage/tokens', kit.page(listView));
  app.get('/manage/tokens/enroll', kit.page(async (call) => enrollView(call, {})));
  app.post('/manage/tokens/enroll', kit.form(
    (call, body) => enroll(call, body),
    (call, body, error) => enrollView(call, keptInput(body), problemOf('enroll', error, ENROLL_FIELDS)),
  ));
  app.get('/manage/tokens/:serial', kit.page((call, request) => detailView(call, serialOf(request))));
  for (const action of ACTIONS) {
    app.post(`/manage/tokens/:serial/${action.name}`, kit.form(
      async (call, body, request) => {
        const serial = serialOf(request);
        const outcome = await action.run(call, serial, body);
        return typeof outcome === 'string' ? { redirect: tokenPath(serial), flash: outcome } : outcome;
      },
      (call, body, error, request) => detailView(call, serialOf(request), problemOf(action.name, error, action.fields ?? {}), keptInput(body)),
    ));
  }
  app.post('/manage/tokens/:serial/remove', kit.form(
    (call, body, request) => remove(call, serialOf(request), body),
    (call, _body, error, request) => detailView(call, serialOf(request), { form: 'remove', message: sentence(error.message) }),
  ));
}
