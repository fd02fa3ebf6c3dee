import type { FastifyRequest } from 'fastify';
import { Errors, type OtpdError } from '../../errors.ts';
import type { Done, ManageKit, View } from './kit.ts';
import { listPage, queryText } from './list-view.ts';
import {
  allFields, apiConfig, postedValues, providerForm, refusalProblems, storedValues, typedSecrets,
  type FormValues, type Problem, type ProviderClass, type SecretsSet,
} from './provider-forms.ts';
import { channelFacts, CHANNELS, isChannel, oneProvider, providerClasses, type ProviderRow } from './provider-list.ts';
import { orRefusal } from './refusal.ts';
import type { PageCall } from './session.ts';

/**
 * Providers (`/manage/providers`): the SMS and e-mail providers with class, default mark,
 * health and the policies that route through them; the default per channel and the failover
 * chains of the `sms_provider` / `email_provider` policies. A form per class built from the
 * class's schema (provider-forms.ts), errors of `/system/setProvider` next to their field;
 * "Send a test message" (`/system/testProvider`) with its result; make default; delete,
 * confirmed, refused with the API's message while a policy uses the provider. Every read and
 * write is the API route's, called in-process.
 */

interface TestView { ok: boolean; to: string; status: string; error?: string; providerMessageId?: string }

interface FormState {
  cls: ProviderClass;
  /** The stored provider when editing. */
  row?: ProviderRow;
  name: string;
  timeout: string;
  makeDefault: boolean;
  values: FormValues;
  secrets: SecretsSet;
  problems?: Problem[];
  retype?: string[];
  test?: TestView;
  testTo?: string;
  testMessage?: string;
  testProblems?: Problem[];
}

const TIMEOUT_HELP = 'Seconds a whole send may take, or "connect,read" seconds (LinOTP\'s "3,5"); a timeout key of the config overrides it. Empty means 5.';

function formView(s: FormState, status?: number): View {
  const form = providerForm(s.cls);
  const problems = s.problems ?? [];
  const fieldErrors: Record<string, string> = {};
  for (const p of [...problems, ...(s.testProblems ?? [])]) if (p.field && !fieldErrors[p.field]) fieldErrors[p.field] = p.text;
  const labelOf = (field: string) => ({ '@name': 'Name', '@timeout': 'Timeout', '@to': 'Send to', '@message': 'Message' } as Record<string, string>)[field] ?? allFields(form).find((f) => f.key === field)?.label ?? field;
  const channel = CHANNELS[s.cls.type];
  const editing = s.row !== undefined;
  return {
    template: 'manage/providers-form',
    status,
    data: {
      title: editing ? `${channel.label} provider ${s.row!.name}` : `New ${s.cls.name} provider`,
      editing, row: s.row, cls: s.cls, channel, form, name: s.name, timeout: s.timeout, makeDefault: s.makeDefault,
      values: s.values, secrets: s.secrets, problems, fieldErrors, retype: s.retype ?? [], labelOf, timeoutHelp: TIMEOUT_HELP,
      test: s.test, testTo: s.testTo ?? '', testMessage: s.testMessage ?? '', testProblems: s.testProblems ?? [],
      action: editing ? `/manage/providers/${s.row!.type}/${encodeURIComponent(s.row!.name)}` : `/manage/providers/new/${s.cls.className}`,
      advancedOpen: (keys: string[]) => keys.some((k) => fieldErrors[k] || (s.values[k] ?? '') !== '' || s.secrets[k]),
    },
  };
}

const notFound = (title: string, message: string): View => ({
  template: 'manage/stores-notfound', status: 404, data: { title, message, back: '/manage/providers', backLabel: 'All providers' },
});
const noSuchProvider = (type: string, name: string) => notFound('No such provider', `There is no ${isChannel(type) ? CHANNELS[type].lower : type} provider named ${name}.`);

const param = (request: FastifyRequest, name: string) => String((request.params as Record<string, string>)[name] ?? '');

/** The stored provider of the path, with its class; undefined when there is none. */
async function stored(call: PageCall, request: FastifyRequest): Promise<{ row: ProviderRow; cls: ProviderClass; classes: ProviderClass[] } | undefined> {
  const type = param(request, 'type');
  if (!isChannel(type)) return undefined;
  const classes = await providerClasses(call);
  const found = await oneProvider(call, type, param(request, 'name'), classes);
  const cls = found && classes.find((c) => c.className === found.row.className);
  return found && cls ? { row: found.row, cls, classes } : undefined;
}

function editState(row: ProviderRow, cls: ProviderClass): FormState {
  const { values, secrets } = storedValues(providerForm(cls), row.config ?? {});
  return { cls, row, name: row.name, timeout: row.timeout, makeDefault: row.isDefault, values, secrets };
}

/** The form as posted (passwords only as "typed"), for showing it again. */
function postedState(cls: ProviderClass, body: Record<string, string>, row?: ProviderRow): FormState {
  const form = providerForm(cls);
  const secrets = row ? storedValues(form, row.config ?? {}).secrets : {};
  return {
    cls, row, name: row?.name ?? (body.name ?? '').trim(), timeout: (body.timeout ?? '').trim(), makeDefault: row?.isDefault ?? body.default === 'true',
    values: postedValues(form, body), secrets, retype: typedSecrets(form, body),
  };
}

async function save(call: PageCall, body: Record<string, string>, cls: ProviderClass, row?: ProviderRow): Promise<Done | View> {
  const state = postedState(cls, body, row);
  const built = apiConfig(providerForm(cls), body, state.secrets);
  if ('problems' in built) return formView({ ...state, problems: built.problems });
  const name = row?.name ?? state.name;
  if (!row && name !== '' && (await oneProvider(call, cls.type, name, [cls]))) {
    return formView({ ...state, problems: [{ field: '@name', text: `An ${CHANNELS[cls.type].lower} provider of this name exists already: choose another name, or edit that one.` }] });
  }
  await call.api('/system/setProvider', {
    type: cls.type, name, class: cls.className, config: JSON.stringify(built.config), timeout: state.timeout === '' ? '5' : state.timeout,
    ...(!row && state.makeDefault ? { default: 'true' } : {}),
  });
  const what = `${CHANNELS[cls.type].label} provider ${name}`;
  return { redirect: `/manage/providers/${cls.type}/${encodeURIComponent(name)}`, flash: row ? `${what} saved.` : `${what} created. Send a test message below to try it.` };
}

function refused(body: Record<string, string>, error: OtpdError, cls: ProviderClass, row?: ProviderRow): View {
  const state = postedState(cls, body, row);
  return formView({ ...state, problems: refusalProblems(providerForm(cls), cls.type, row?.name ?? state.name, error.message, error.code) });
}

/** "Send a test message": the result, or the refusal of the destination next to its field. */
async function sendTest(call: PageCall, body: Record<string, string>, row: ProviderRow, cls: ProviderClass): Promise<View> {
  const to = (body.to ?? '').trim();
  const message = body.message ?? '';
  const base = { ...editState(row, cls), testTo: to, testMessage: message };
  if (to === '') return formView({ ...base, testProblems: [{ field: '@to', text: row.type === 'sms' ? 'Type a phone number, e.g. +4915123456789.' : 'Type an e-mail address.' }] });
  try {
    const { value, detail } = await call.answer('/system/testProvider', { type: row.type, name: row.name, to, ...(message.trim() ? { message } : {}) });
    const ok = value === true;
    return formView({
      ...base,
      test: { ok, to, status: String(detail?.status ?? (ok ? 'accepted' : 'failed')), ...(detail?.message ? { error: String(detail.message) } : {}), ...(detail?.provider_message_id ? { providerMessageId: String(detail.provider_message_id) } : {}) },
    });
  } catch (e) {
    const err = e as OtpdError;
    if (err.code === Errors.invalidRecipient.code || err.code === Errors.invalidParameter.code) {
      const why = err.message.replace(/^Invalid parameter '[^']+': /, '');
      return formView({ ...base, testProblems: [{ field: /'message'/.test(err.message) ? '@message' : '@to', text: `${why[0]!.toUpperCase()}${why.slice(1)}.` }] });
    }
    throw e;
  }
}

export function registerProviders(kit: ManageKit): void {
  const { app } = kit;

  app.get('/manage/providers', kit.page(orRefusal(async (call, request) => {
    const q = queryText(request.query, 'q').trim();
    const type = queryText(request.query, 'type');
    const classes = await providerClasses(call);
    const channels = [await channelFacts(call, 'sms', classes), await channelFacts(call, 'email', classes)];
    const all = channels.flatMap((c) => c.rows);
    const shown = all.filter((r) => (!q || r.name.toLowerCase().includes(q.toLowerCase())) && (!type || r.type === type));
    const list = listPage(shown, request.query, '/manage/providers', { q, type }, {
      name: { label: 'Name', value: (r) => r.name },
      channel: { label: 'Channel', value: (r) => CHANNELS[r.type].label },
      class: { label: 'Class', value: (r) => r.classLabel },
      health: { label: 'Health', value: (r) => r.health.word },
    });
    return { template: 'manage/providers', data: { title: 'Providers', list, q, type, classes, channels, channelNames: CHANNELS, any: all.length > 0 } };
  })));

  app.get('/manage/providers/new/:class', kit.page(orRefusal(async (call, request) => {
    const cls = (await providerClasses(call)).find((c) => c.className === param(request, 'class'));
    if (!cls) return notFound('No such provider class', `otpd has no provider class ${param(request, 'class')}.`);
    const facts = await channelFacts(call, cls.type, [cls]);
    return formView({ cls, name: '', timeout: '', makeDefault: facts.rows.length === 0, values: storedValues(providerForm(cls), {}).values, secrets: {} });
  })));

  app.post('/manage/providers/new/:class', kit.form(
    async (call, body, request) => {
      const cls = (await providerClasses(call)).find((c) => c.className === param(request, 'class'));
      if (!cls) return notFound('No such provider class', `otpd has no provider class ${param(request, 'class')}.`);
      return save(call, body, cls);
    },
    async (call, body, error, request) => {
      const cls = (await providerClasses(call)).find((c) => c.className === param(request, 'class'))!;
      return refused(body, error, cls);
    },
  ));

  app.get('/manage/providers/:type/:name', kit.page(orRefusal(async (call, request) => {
    const found = await stored(call, request);
    if (!found) return noSuchProvider(param(request, 'type'), param(request, 'name'));
    return formView(editState(found.row, found.cls));
  })));

  app.post('/manage/providers/:type/:name', kit.form(
    async (call, body, request) => {
      const found = await stored(call, request);
      if (!found) return noSuchProvider(param(request, 'type'), param(request, 'name'));
      if (found.row.managed) return formView({ ...editState(found.row, found.cls), problems: [{ text: 'A managed provider is changed through the API with its password (managed=…).' }] });
      return save(call, body, found.cls, found.row);
    },
    async (call, body, error, request) => {
      const found = await stored(call, request);
      if (!found) return noSuchProvider(param(request, 'type'), param(request, 'name'));
      return refused(body, error, found.cls, found.row);
    },
  ));

  app.post('/manage/providers/:type/:name/test', kit.form(
    async (call, body, request) => {
      const found = await stored(call, request);
      if (!found) return noSuchProvider(param(request, 'type'), param(request, 'name'));
      return sendTest(call, body, found.row, found.cls);
    },
    async (call, body, error, request) => {
      const found = await stored(call, request);
      if (!found) return noSuchProvider(param(request, 'type'), param(request, 'name'));
      return formView({ ...editState(found.row, found.cls), testTo: body.to ?? '', testMessage: body.message ?? '', testProblems: [{ text: `Not sent: ${error.message}.` }] });
    },
  ));

  app.post('/manage/providers/:type/:name/default', kit.form(
    async (call, _body, request) => {
      const type = param(request, 'type');
      const name = param(request, 'name');
      if (!isChannel(type)) return noSuchProvider(type, name);
      const { value, detail } = await call.answer('/system/setDefaultProvider', { type, name });
      if (value !== true) return { redirect: '/manage/providers', flash: `Not changed: ${String(detail?.message ?? 'unknown provider')}` };
      return { redirect: '/manage/providers', flash: `${name} is now the default ${CHANNELS[type].lower} provider.` };
    },
    async (_call, _body, error) => ({ template: 'manage/stores-notfound', data: { title: 'Not changed', message: `${error.message}.`, back: '/manage/providers', backLabel: 'All providers' } }),
  ));

  app.post('/manage/providers/:type/:name/delete', kit.form(
    async (call, body, request) => {
      const found = await stored(call, request);
      if (!found) return noSuchProvider(param(request, 'type'), param(request, 'name'));
      const { row, cls } = found;
      if (body.confirmed !== 'yes') {
        const others = (await channelFacts(call, row.type, [cls])).rows.length - 1;
        return { template: 'manage/providers-delete', data: { title: `Delete ${CHANNELS[row.type].lower} provider ${row.name}?`, row, channel: CHANNELS[row.type], others } };
      }
      const { value, detail } = await call.answer('/system/delProvider', { type: row.type, name: row.name, ...(body.managed ? { managed: body.managed } : {}) });
      if (value === true) return { redirect: '/manage/providers', flash: `${CHANNELS[row.type].label} provider ${row.name} deleted.` };
      return formView({ ...editState(row, cls), problems: [{ text: `Not deleted: ${String(detail?.message ?? 'refused').replace(/\n/g, ' ')}` }] });
    },
    async (call, _body, error, request) => {
      const found = await stored(call, request);
      if (!found) return noSuchProvider(param(request, 'type'), param(request, 'name'));
      return formView({ ...editState(found.row, found.cls), problems: [{ text: `Not deleted: ${error.message}.` }] });
    },
  ));
}

