import type { OtpdError } from '../../errors.ts';
import type { ManageKit, View } from './kit.ts';
import { orRefusal } from './refusal.ts';
import type { PageCall } from './session.ts';
import { asRecord } from './stores.ts';

/**
 * System settings (`/manage/settings`): the runtime-config catalogue (`/system/getConfigCatalogue`)
 * as one form per group, each key with an input of its kind (number with its bounds, True/False,
 * a choice, text), its default, whether a value is stored and its help; secret keys are
 * write-only. Saving sends the changed keys of the group to `/system/setConfig` in one call
 * (otpd checks all before writing any); a refusal (ERR270x) is shown next to the key it names,
 * with what was typed kept. "Reset to default" is `/system/delConfig` for one key. Keys stored
 * under a family pattern (`HMAC_CHALLENGE_PROMPT`) are listed with the others and can be added.
 */

const CENSORED = '__CENSORED__';

export interface Entry {
  key: string;
  kind: 'integer' | 'boolean' | 'choice' | 'list' | 'text' | 'secret';
  type: string | null;
  minimum?: number;
  maximum?: number;
  choices?: string[];
  format?: string;
  default: string | null;
  help: string;
  origin: string;
  refused?: string;
  stored?: boolean;
  family?: boolean;
}

interface Group { id: string; label: string; about: string; keys: (key: string) => boolean }

const among = (...keys: string[]) => (k: string) => keys.includes(k);

/** The groups of the page, in order; a key in none of them lands in the last one. */
const GROUPS: Group[] = [
  { id: 'tokens', label: 'New tokens', about: 'Defaults of tokens enrolled from now on; existing tokens keep theirs.', keys: (k) => /^Default(MaxFailCount|CountWindow|SyncWindow|OtpLen|ResetFailCount)$/.test(k) || /^(hotp|totp)\./.test(k) || k.startsWith('AutoResync') },
  { id: 'validation', label: 'Validation', about: 'How /validate/check and RADIUS read a login.', keys: among('PrependPin', 'PassOnUserNotFound', 'PassOnUserNoToken', 'splitAtSign', 'DefaultRealm', 'mayOverwriteClient', 'allowSamlAttributes', 'realmbox', 'policy_action_validation', 'ChallengeMaxAttempts', 'TransactionIdLength', 'DefaultChallengeValidityTime') },
  { id: 'accounts', label: 'Failed logins per account', about: 'Limits on one account (realm and user) across all its tokens, HTTP and RADIUS.', keys: (k) => k.startsWith('Account') },
  { id: 'challenges', label: 'SMS and e-mail codes', about: 'How long a code sent by SMS or e-mail stays valid, and when a new one is sent.', keys: among('SMSProviderTimeout', 'SMSBlockingTimeout', 'EmailChallengeValidityTime', 'EmailBlockingTimeout', 'email_provider_template_root') },
  { id: 'delivery', label: 'Delivery', about: 'The dispatcher, send limits, allowed countries and provider hosts.', keys: (k) => k.startsWith('Delivery') },
  { id: 'userstores', label: 'User stores', about: 'The user cache and which hosts a user store may reach.', keys: (k) => k.startsWith('UserCache') || k.startsWith('UserStore') },
  { id: 'radius', label: 'RADIUS', about: 'Attributes of an Access-Accept.', keys: (k) => k.startsWith('Radius') },
  { id: 'legacy', label: "LinOTP's provider keys", about: 'Kept for configurations imported from LinOTP; set up providers on the Providers page instead.', keys: (k) => /Provider(Config)?$/.test(k) },
  { id: 'other', label: 'Other keys', about: 'Keys otpd accepts by the pattern of their name, and stored keys of no group above.', keys: () => true },
];

export const groupOf = (key: string): Group => GROUPS.find((g) => g.keys(key))!;

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
/** The catalogue's help and type texts mark names with backticks: escaped, then those as `<code>`. */
const withCode = (s: string) => escapeHtml(s).replace(/`([^`]+)`/g, '<code>$1</code>');

/** A boolean as the form's select shows it. */
const boolText = (v: string) => (['true', '1', 'yes', 'on'].includes(v.trim().toLowerCase()) ? 'True' : 'False');

interface Field extends Entry { value: string; isSet: boolean; label: string }

interface Problem { key?: string; text: string }

interface PageState {
  /** The group whose form was posted, with what was typed (kept after a refusal). */
  typed?: { group: string; values: Record<string, string> };
  problem?: Problem;
  /** The add-a-key form after a refusal. */
  added?: { key: string; value: string; field: 'key' | 'value' };
}

async function read(call: PageCall): Promise<{ entries: Entry[]; families: Entry[]; values: Record<string, string> }> {
  const catalogue = asRecord(await call.api('/system/getConfigCatalogue'));
  const values = asRecord(await call.api('/system/getConfig')) as Record<string, string>;
  return { entries: (catalogue.keys as Entry[]) ?? [], families: (catalogue.families as Entry[]) ?? [], values };
}

/** Every key of the page: the catalogue's, then stored keys it knows only by their pattern. */
function fields(entries: Entry[], families: Entry[], values: Record<string, string>): Field[] {
  const known = new Set(entries.map((e) => e.key));
  const catalogued = entries.map((e) => ({ ...e, value: values[e.key] ?? e.default ?? '', isSet: e.stored === true, label: e.key }));
  const others = Object.keys(values).filter((k) => !known.has(k)).sort().map((key): Field => {
    const secret = values[key] === CENSORED;
    const family = families.find((f) => f.key !== '<any key naming a secret>' && matchesFamily(f.key, key));
    return {
      key, label: key, kind: secret ? 'secret' : 'text', type: secret ? 'secret text' : 'text', default: null, origin: family?.origin ?? 'otpd',
      help: family ? `${family.key}: ${family.help}` : 'A stored key otpd does not read.', value: values[key]!, isSet: true,
    };
  });
  return [...catalogued, ...others];
}

/** Whether a stored key fits a family's pattern as the catalogue writes it (`<TYPE>_CHALLENGE_PROMPT`, `DeliveryDefaultCountry.<realm>`). */
function matchesFamily(pattern: string, key: string): boolean {
  const re = new RegExp(`^${pattern.split(/<[^>]+>/).map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.+')}$`);
  return re.test(key);
}

/** What the input shows: the typed value after a refusal, else the value in force (never a secret). */
function shownValue(f: Field, state: PageState): string {
  const group = groupOf(f.key).id;
  if (f.kind === 'secret') return '';
  if (state.typed?.group === group && f.key in state.typed.values) return state.typed.values[f.key]!;
  return f.kind === 'boolean' ? boolText(f.value) : f.value;
}

async function pageView(call: PageCall, state: PageState = {}): Promise<View> {
  const { entries, families, values } = await read(call);
  const all = fields(entries, families, values);
  const groups = GROUPS.map((g) => ({
    ...g, fields: all.filter((f) => groupOf(f.key).id === g.id).map((f) => ({ ...f, shown: shownValue(f, state), retype: f.kind === 'secret' && !!state.typed?.values[f.key] })),
  })).filter((g) => g.fields.length > 0 || g.id === 'other');
  return {
    template: 'manage/settings',
    data: {
      title: 'System settings', groups, problem: state.problem, added: state.added, withCode,
      families: families.filter((f) => f.key !== '<any key naming a secret>'),
      problemGroup: state.problem?.key ? groupOf(state.problem.key).id : state.added ? 'other' : undefined,
    },
  };
}

/** Where a refusal of setConfig belongs: the key it names. */
function problemOf(message: string): Problem {
  const m = /config key '([^']+)'(?::| is refused:)? ?(.*)$/is.exec(message);
  const key = m?.[1];
  const text = key && m![2] ? m![2] : message;
  const first = /^otpd\b/.test(text) ? text : `${text[0]!.toUpperCase()}${text.slice(1)}`;
  return { key, text: `${first}${/[.!?]$/.test(text) ? '' : '.'}` };
}

/** The keys of one group whose posted value differs from the one in force; secrets only when typed. */
function changes(all: Field[], group: string, body: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of all) {
    if (groupOf(f.key).id !== group || f.refused || !(f.key in body)) continue;
    const posted = body[f.key]!;
    if (f.kind === 'secret') {
      if (posted !== '') out[f.key] = posted;
    } else if (f.kind === 'boolean' ? boolText(f.value) !== posted : f.value !== posted) out[f.key] = posted;
  }
  return out;
}

const groupIdOf = (body: Record<string, string>) => (GROUPS.some((g) => g.id === body.group) ? body.group! : 'other');

export function registerSettings(kit: ManageKit): void {
  const { app } = kit;

  app.get('/manage/settings', kit.page(orRefusal(async (call) => pageView(call))));

  app.post('/manage/settings', kit.form(
    async (call, body) => {
      const group = groupIdOf(body);
      const { entries, families, values } = await read(call);
      const changed = changes(fields(entries, families, values), group, body);
      const label = GROUPS.find((g) => g.id === group)!.label;
      if (Object.keys(changed).length === 0) return { redirect: `/manage/settings#g-${group}`, flash: `${label}: nothing changed.` };
      await call.api('/system/setConfig', changed);
      return { redirect: `/manage/settings#g-${group}`, flash: `${label} saved: ${Object.keys(changed).join(', ')}.` };
    },
    async (call, body, error: OtpdError) => pageView(call, { typed: { group: groupIdOf(body), values: body }, problem: problemOf(error.message) }),
  ));

  app.post('/manage/settings/reset', kit.form(
    async (call, body) => {
      const key = body.reset ?? '';
      await call.api('/system/delConfig', { key });
      const { entries } = await read(call);
      const entry = entries.find((e) => e.key === key);
      const back = entry?.default !== null && entry?.default !== undefined ? `its default (${entry.default === '' ? 'empty' : entry.default})` : 'unset';
      return { redirect: `/manage/settings#g-${groupOf(key).id}`, flash: `${key} reset: ${back}.` };
    },
    async (call, body, error) => pageView(call, { problem: { key: body.reset, text: problemOf(error.message).text } }),
  ));

  app.post('/manage/settings/add', kit.form(
    async (call, body) => {
      const key = (body.newkey ?? '').trim();
      await call.api('/system/setConfig', { key, value: body.newvalue ?? '' });
      return { redirect: '/manage/settings#g-other', flash: `${key} set.` };
    },
    async (call, body, error) => {
      const p = problemOf(error.message);
      const onValue = /^Invalid value|placeholder/i.test(error.message) || error.code === 2705;
      return pageView(call, { added: { key: body.newkey ?? '', value: body.newvalue ?? '', field: onValue ? 'value' : 'key' }, problem: { text: p.text } });
    },
  ));
}
