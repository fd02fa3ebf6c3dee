import type { FastifyRequest } from 'fastify';
import { randomToken } from '../../crypto/random.ts';
import type { OtpdError } from '../../errors.ts';
import type { ManageKit, View } from './kit.ts';
import { listPage, queryText } from './list-view.ts';
import { formHandingOver, pageTakingOver } from './once.ts';
import { orRefusal } from './refusal.ts';
import type { PageCall } from './session.ts';
import { asRecord } from './stores.ts';

/**
 * RADIUS clients (`/manage/radius`): the list (name, address or network, default realm,
 * Message-Authenticator, where it comes from), a form to create one and to change one, and
 * delete (confirmed). The shared secret is write-only: on creation the admin types one or otpd
 * generates one, and it is shown once on the page after the form (handed over sealed, see
 * once.ts); a reload shows it no more. Editing keeps the stored secret unless a new one is
 * typed or generated (then shown once again). Everything goes through `/system/*RadiusClient*`.
 */

const CENSORED = '__CENSORED__';
const FIELDS = ['name', 'address', 'realm', 'secret', 'require_message_authenticator'] as const;
type Field = (typeof FIELDS)[number];

interface Client { name: string; address: string; realm: string; requireMessageAuthenticator: boolean; source: 'api' | 'config' }

interface FormState {
  /** The stored name when editing. */
  stored?: string;
  values: { name: string; address: string; realm: string; requireMessageAuthenticator: boolean; generate: boolean };
  source?: 'api' | 'config';
  problem?: { field?: Field; text: string };
  /** A secret was typed and is not sent back: say so next to the field. */
  retype?: boolean;
}

const param = (request: FastifyRequest, name: string) => String((request.params as Record<string, string>)[name] ?? '');
const clientPath = (name: string) => `/manage/radius/${encodeURIComponent(name)}`;
const purpose = (name: string) => `radius:${name}`;

async function clients(call: PageCall): Promise<Client[]> {
  return Object.values(asRecord(await call.api('/system/getRadiusClients'))).map((c) => {
    const r = asRecord(c);
    return {
      name: String(r.name), address: String(r.address), realm: String(r.realm ?? ''),
      requireMessageAuthenticator: r.require_message_authenticator === true, source: r.source === 'config' ? 'config' : 'api',
    };
  });
}

async function realmNames(call: PageCall): Promise<string[]> {
  try {
    return Object.keys(asRecord(await call.api('/system/getRealms'))).sort();
  } catch {
    return [];
  }
}

/** ERR2010 names its field first (`address: host bits set …`). */
function problemOf(message: string): { field?: Field; text: string } {
  const m = /^([a-z_]+): (.*)$/s.exec(message);
  const field = m && (FIELDS as readonly string[]).includes(m[1]!) ? (m[1] as Field) : undefined;
  const text = field ? m![2]! : message;
  return { field, text: `${text[0]!.toUpperCase()}${text.slice(1)}${/[.!?]$/.test(text) ? '' : '.'}` };
}

async function formView(call: PageCall, s: FormState): Promise<View> {
  const editing = s.stored !== undefined;
  const realms = await realmNames(call);
  return {
    template: 'manage/radius-form',
    data: {
      title: editing ? `RADIUS client ${s.stored}` : 'New RADIUS client',
      editing, stored: s.stored, values: s.values, source: s.source, problem: s.problem, retype: s.retype ?? false,
      realms: s.values.realm && !realms.includes(s.values.realm) ? [...realms, s.values.realm] : realms,
      action: editing ? clientPath(s.stored!) : '/manage/radius/new',
    },
  };
}

const posted = (body: Record<string, string>): FormState['values'] => ({
  name: (body.name ?? '').trim(), address: (body.address ?? '').trim(), realm: (body.realm ?? '').trim(),
  requireMessageAuthenticator: body.require_message_authenticator === 'True', generate: body.generate === 'yes',
});

const notFound = (name: string): View => ({
  template: 'manage/stores-notfound', status: 404,
  data: { title: 'No such RADIUS client', message: `There is no RADIUS client named ${name}.`, back: '/manage/radius', backLabel: 'All RADIUS clients' },
});

/** Creates or updates through `/system/setRadiusClient`; the secret to show once, or undefined when the stored one is kept. */
async function save(call: PageCall, name: string, body: Record<string, string>, creating: boolean): Promise<string | undefined> {
  const v = posted(body);
  const typed = body.secret ?? '';
  const secret = typed !== '' ? typed : creating || v.generate ? randomToken(24) : undefined;
  await call.api('/system/setRadiusClient', {
    name, address: v.address, realm: v.realm, secret: secret ?? CENSORED,
    require_message_authenticator: v.requireMessageAuthenticator ? 'true' : 'false',
  });
  return secret;
}

export function registerRadius(kit: ManageKit): void {
  const { app } = kit;

  app.get('/manage/radius', kit.page(orRefusal(async (call, request) => {
    const q = queryText(request.query, 'q').trim();
    const all = await clients(call);
    const shown = all.filter((c) => !q || c.name.toLowerCase().includes(q.toLowerCase()) || c.address.includes(q));
    const list = listPage(shown, request.query, '/manage/radius', { q }, {
      name: { label: 'Name', value: (c) => c.name },
      address: { label: 'Address or network', value: (c) => c.address },
      realm: { label: 'Default realm', value: (c) => c.realm },
      ma: { label: 'Message-Authenticator', value: (c) => (c.requireMessageAuthenticator ? 0 : 1) },
      source: { label: 'Defined in', value: (c) => c.source },
    });
    return { template: 'manage/radius', data: { title: 'RADIUS clients', list, q, any: all.length > 0, weak: all.filter((c) => !c.requireMessageAuthenticator).map((c) => c.name) } };
  })));

  app.get('/manage/radius/new', kit.page(orRefusal(async (call) => formView(call, {
    values: { name: '', address: '', realm: '', requireMessageAuthenticator: true, generate: false },
  }))));

  app.post('/manage/radius/new', formHandingOver(kit,
    async (call, body, _request, hand) => {
      const values = posted(body);
      if (values.name && (await clients(call)).some((c) => c.name === values.name)) {
        return formView(call, { values, problem: { field: 'name', text: `A RADIUS client named ${values.name} exists already: open it from the list to change it.` }, retype: !!body.secret });
      }
      const secret = (await save(call, values.name, body, true))!;
      hand(purpose(values.name), secret);
      return { redirect: `${clientPath(values.name)}/secret`, flash: `RADIUS client ${values.name} created.` };
    },
    async (call, body, error: OtpdError) => formView(call, { values: posted(body), problem: problemOf(error.message), retype: !!body.secret }),
  ));

  app.get('/manage/radius/:name/secret', pageTakingOver(kit, (request) => purpose(param(request, 'name')), async (_call, request, secret) => {
    const name = param(request, 'name');
    return { template: 'manage/radius-secret', data: { title: `Shared secret of ${name}`, name, secret, href: clientPath(name) } };
  }));

  app.get('/manage/radius/:name', kit.page(orRefusal(async (call, request) => {
    const name = param(request, 'name');
    const c = (await clients(call)).find((x) => x.name === name);
    if (!c) return notFound(name);
    return formView(call, { stored: name, source: c.source, values: { name, address: c.address, realm: c.realm, requireMessageAuthenticator: c.requireMessageAuthenticator, generate: false } });
  })));

  app.post('/manage/radius/:name', formHandingOver(kit,
    async (call, body, request, hand) => {
      const name = param(request, 'name');
      if (!(await clients(call)).some((c) => c.name === name)) return notFound(name);
      const secret = await save(call, name, body, false);
      if (secret === undefined) return { redirect: '/manage/radius', flash: `RADIUS client ${name} saved; its shared secret is unchanged.` };
      hand(purpose(name), secret);
      return { redirect: `${clientPath(name)}/secret`, flash: `RADIUS client ${name} saved with a new shared secret.` };
    },
    async (call, body, error, request) => {
      const name = param(request, 'name');
      const c = (await clients(call)).find((x) => x.name === name);
      return formView(call, { stored: name, source: c?.source, values: { ...posted(body), name }, problem: problemOf(error.message), retype: !!body.secret });
    },
  ));

  app.post('/manage/radius/:name/delete', kit.form(
    async (call, body, request) => {
      const name = param(request, 'name');
      const c = (await clients(call)).find((x) => x.name === name);
      if (!c) return notFound(name);
      if (body.confirmed !== 'yes') return { template: 'manage/radius-delete', data: { title: `Delete RADIUS client ${name}?`, client: c } };
      await call.api('/system/delRadiusClient', { name });
      return { redirect: '/manage/radius', flash: `RADIUS client ${name} deleted: otpd no longer answers ${c.address}.` };
    },
    async (_call, _body, error, request) => ({
      template: 'manage/stores-notfound',
      data: { title: 'Not deleted', message: `Not deleted: ${error.message}`, back: clientPath(param(request, 'name')), backLabel: 'Back to the client' },
    }),
  ));
}
