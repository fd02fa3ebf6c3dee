import { actionSpec, isScope, type Scope } from '../../policy/catalogue.ts';
import { parseActionString, type RawActionItem } from '../../policy/parse.ts';

/**
 * The policy form's action fields: one input per action of the chosen scope, its kind from the
 * action's type (a yes/no choice for flags, a number, a choice of the allowed values, check
 * boxes for a list of token types, text), its help text from the catalogue. Which actions are
 * offered is `/system/getPolicyDef`'s answer (the actions setPolicy accepts); the catalogue
 * entry only adds what LinOTP's type names do not say (the allowed combinations of a list, the
 * range of a number, the default). The fields and the free "action string" are two views of
 * one value: the string is parsed into the fields and the fields are written back into it,
 * keeping items no field stands for (`*`, `!remove`, …) as they were.
 */

/** Names of pages under /manage/policies/: a policy of that name is edited at /manage/policies/edit/<name>. */
const PAGE_NAMES = new Set(['new', 'import', 'export', 'simulate', 'edit']);
export const policyHref = (name: string) => (PAGE_NAMES.has(name) ? `/manage/policies/edit/${encodeURIComponent(name)}` : `/manage/policies/${encodeURIComponent(name)}`);

export type ActionInput =
  | { kind: 'flag' }
  | { kind: 'number'; min?: number; max?: number }
  /** `aliases`: a stored value → the option that stands for it (otppin=password → 1) */
  | { kind: 'choice'; options: { value: string; label: string }[]; aliases?: Record<string, string> }
  | { kind: 'multi'; items: string[] }
  | { kind: 'text'; hint?: string };

export interface ActionField {
  name: string;
  input: ActionInput;
  help: string;
  /** boolean / integer / choice / list / text, for the label */
  typeLabel: string;
  /** What otpd does when no policy sets it, in words (empty when off / not set). */
  defaultText: string;
}

/** getPolicyDef's entry of one action (LinOTP's shape). */
interface PolicyDef { type?: string; value?: (string | number)[]; desc?: string }

/** Words for the values a person picks from (LinOTP's numbers stay visible). */
const CHOICE_LABELS: Record<string, Record<string, string>> = {
  otppin: {
    '0': '0 — token_pin: the token PIN, then the OTP',
    '1': '1 — password: the user-store password, then the OTP',
    '2': '2 — only_otp: the OTP alone, no PIN',
    '3': '3 — ignore_pin: the PIN is not checked',
  },
  autoenrollment: {
    sms: 'sms — an SMS token (needs a mobile number)',
    email: 'email — an e-mail token (needs an e-mail address)',
    'sms email': 'sms email — SMS when the user has a mobile number, else e-mail',
    'email sms': 'email sms — e-mail when the user has an address, else SMS',
    '*': '* — the same as sms email',
  },
};

/** The input of one action, from its catalogue type (getPolicyDef's LinOTP type when the catalogue lacks it). */
function inputOf(scope: Scope, name: string, def: PolicyDef): { input: ActionInput; typeLabel: string } {
  const type = actionSpec(scope, name)?.type;
  const labels = CHOICE_LABELS[name] ?? {};
  if (!type) {
    if (def.type === 'bool') return { input: { kind: 'flag' }, typeLabel: 'boolean' };
    if (def.type === 'int') return { input: { kind: 'number' }, typeLabel: 'integer' };
    if (def.type === 'set' && def.value) return { input: { kind: 'choice', options: def.value.map((v) => ({ value: String(v), label: labels[String(v)] ?? String(v) })) }, typeLabel: 'choice' };
    return { input: { kind: 'text' }, typeLabel: 'text' };
  }
  switch (type.kind) {
    case 'bool':
      return { input: { kind: 'flag' }, typeLabel: 'boolean' };
    case 'int':
      return { input: { kind: 'number', min: type.min, max: type.max }, typeLabel: 'integer' };
    case 'set': {
      // a number and the name it stands for are one choice: LinOTP's number, labelled with the name
      const canonical = type.canonical ?? {};
      const names = new Set(Object.values(canonical));
      const options = type.values.filter((v) => !names.has(v)).map((v) => ({ value: v, label: labels[v] ?? (canonical[v] ? `${v} — ${canonical[v]}` : v) }));
      const aliases = Object.fromEntries(Object.entries(canonical).map(([number, name]) => [name, number]));
      return { input: { kind: 'choice', options, aliases }, typeLabel: 'choice' };
    }
    case 'list':
      return type.combos
        ? { input: { kind: 'choice', options: type.combos.map((v) => ({ value: v, label: labels[v] ?? v })) }, typeLabel: 'choice' }
        : { input: { kind: 'multi', items: [...type.items] }, typeLabel: 'list' };
    case 'names':
      return { input: { kind: 'text', hint: 'names separated by spaces, in fail-over order' }, typeLabel: 'names' };
    default:
      return { input: { kind: 'text', hint: type.hint }, typeLabel: 'text' };
  }
}

function defaultText(scope: Scope, name: string): string {
  const d = actionSpec(scope, name)?.default;
  if (d === undefined || d === false || d === '') return '';
  return `Default when no policy sets it: ${d === true ? 'on' : String(d)}.`;
}

/** The action fields of a scope, in getPolicyDef's (the catalogue's) order. */
export function actionFields(scope: string, defs: Record<string, unknown>): ActionField[] {
  if (!isScope(scope)) return [];
  return Object.entries(defs).map(([name, raw]) => {
    const def = (raw && typeof raw === 'object' ? raw : {}) as PolicyDef;
    return { name, ...inputOf(scope, name, def), help: def.desc ?? '', defaultText: defaultText(scope, name) };
  });
}

/** The form value of each action field, by action name: '' = not set; multi = items joined by spaces. */
export type ActionValues = Record<string, string>;

/** The items of an action string, or undefined when it does not parse (the API says why). */
export function actionItems(action: string): RawActionItem[] | undefined {
  try {
    return parseActionString(action);
  } catch {
    return undefined;
  }
}

const TRUE_WORDS = new Set(['true', 'yes', 'on']);

/** The fields' values an action string stands for. */
export function valuesFromAction(action: string, fields: ActionField[]): ActionValues {
  const out: ActionValues = {};
  const items = actionItems(action) ?? [];
  for (const f of fields) {
    const item = items.find((i) => i.name === f.name);
    if (!item) {
      out[f.name] = '';
    } else if (f.input.kind === 'flag') {
      const v = item.value?.trim().toLowerCase();
      out[f.name] = item.negated ? 'no' : v === undefined || TRUE_WORDS.has(v) || (/^-?\d+$/.test(v) && Number(v) > 0) ? 'yes' : 'no';
    } else if (f.input.kind === 'choice' && f.input.aliases) {
      const v = (item.value ?? '').trim().toLowerCase();
      out[f.name] = f.input.aliases[v] ?? v;
    } else if (f.input.kind === 'multi' || f.input.kind === 'choice') {
      out[f.name] = (item.value ?? '').trim().toLowerCase().split(/\s+/).filter(Boolean).join(' ');
    } else {
      out[f.name] = item.value ?? '';
    }
  }
  return out;
}

/** The fields' values as posted: `a.<action>`, check boxes as `a.<action>.<item>`. */
export function postedValues(body: Record<string, string>, fields: ActionField[]): ActionValues {
  const out: ActionValues = {};
  for (const f of fields) {
    out[f.name] = f.input.kind === 'multi'
      ? f.input.items.filter((item) => body[`a.${f.name}.${item}`] === 'yes').join(' ')
      : (body[`a.${f.name}`] ?? '').trim();
  }
  return out;
}

/** A value as the action string writes it: quoted when it holds a comma or starts with a quote. */
function quoted(value: string): string {
  if (!/[,'"]/.test(value) && value === value.trim()) return value;
  return value.includes("'") ? `"${value}"` : `'${value}'`;
}

function itemText(f: ActionField, value: string): string | undefined {
  if (value === '') return undefined;
  if (f.input.kind === 'flag') return value === 'no' ? `!${f.name}` : f.name;
  return `${f.name}=${quoted(value)}`;
}

function rawText(i: RawActionItem): string {
  return i.negated ? `!${i.name}` : i.value === undefined ? i.name : `${i.name}=${quoted(i.value)}`;
}

/**
 * The action string of the fields' values: the items of `base` that no field stands for are
 * kept in their place, each field's item replaces its old one (or goes at the end).
 */
export function actionFromValues(base: string, fields: ActionField[], values: ActionValues): string {
  const items = actionItems(base) ?? [];
  const byField = new Map(fields.map((f) => [f.name, f]));
  const out: string[] = [];
  const done = new Set<string>();
  for (const i of items) {
    const f = byField.get(i.name);
    if (!f) {
      out.push(rawText(i));
      continue;
    }
    const text = itemText(f, values[f.name] ?? '');
    if (text) out.push(text);
    done.add(f.name);
  }
  for (const f of fields) {
    if (done.has(f.name)) continue;
    const text = itemText(f, values[f.name] ?? '');
    if (text) out.push(text);
  }
  return out.join(', ');
}

/** Items of an action string that no field of the scope stands for (shown as "other items"). */
export function otherItems(action: string, fields: ActionField[]): string[] {
  const names = new Set(fields.map((f) => f.name));
  return (actionItems(action) ?? []).filter((i) => !names.has(i.name)).map(rawText);
}

/**
 * What a posted form means for the action: the free action string when the admin changed it
 * (it wins: an expert's text is sent as typed), else the fields written into the string the
 * form was shown with (that string unchanged when no field changed either).
 */
export function postedAction(body: Record<string, string>, fields: ActionField[]): { action: string; fromText: boolean } {
  const base = body.action_base ?? '';
  const text = body.action ?? '';
  if (text.trim() !== base.trim()) return { action: text.trim(), fromText: true };
  const values = postedValues(body, fields);
  const before = valuesFromAction(base, fields);
  if (fields.every((f) => (values[f.name] ?? '') === (before[f.name] ?? ''))) return { action: base.trim(), fromText: false };
  return { action: actionFromValues(base, fields, values), fromText: false };
}
