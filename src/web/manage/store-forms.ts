import { LDAP_PRESETS } from '../../users/ldap.ts';
import { resolverType } from '../../users/registry.ts';
import { CENSORED } from '../../config/secret-fields.ts';

/**
 * The user-store forms, one per resolver type: which LinOTP keys each shows, under which
 * plain label (the key itself is shown beside it as a hint, so LinOTP's guide can be
 * followed), with the help text of the resolver type's own key catalogue. And the two
 * translations: form fields → `/system/setResolver` parameters (secrets: empty keeps the
 * stored one through `__CENSORED__`) and `/system/getResolver` data → form values.
 */

export type StoreType = 'ldapresolver' | 'sqlresolver' | 'passwdresolver';

export const STORE_TYPES: Record<StoreType, { label: string; short: string }> = {
  ldapresolver: { label: 'LDAP or Active Directory', short: 'LDAP' },
  sqlresolver: { label: 'SQL database', short: 'SQL' },
  passwdresolver: { label: 'Flat file (passwd format)', short: 'Flat file' },
};

export const isStoreType = (t: string): t is StoreType => Object.hasOwn(STORE_TYPES, t);

export interface FormField {
  /** The LinOTP key, also the input's name. */
  key: string;
  label: string;
  kind: 'text' | 'password' | 'checkbox' | 'textarea' | 'select';
  help: string;
  required?: boolean;
  /** Shown when empty: the key's default. */
  placeholder?: string;
  options?: { value: string; label: string }[];
}

/** A JSON key of LinOTP (`USERINFO`, `Map`) shown as one input per otpd user field. */
export interface Mapping {
  key: string;
  label: string;
  help: string;
  rows: { field: string; label: string; required?: boolean }[];
}

export interface FieldGroup {
  legend: string;
  fields: FormField[];
  mapping?: Mapping;
  /** Folded away unless one of its fields has an error. */
  advanced?: boolean;
  /** LDAP: the preset buttons sit in this group. */
  presets?: boolean;
}

export interface StoreForm {
  type: StoreType;
  groups: FieldGroup[];
  /** Keys the form does not show but keeps as stored (compatibility switches). */
  carried: string[];
}

const PERSON_ROWS = [
  { field: 'givenname', label: 'Given name' }, { field: 'surname', label: 'Surname' }, { field: 'email', label: 'E-mail' },
  { field: 'mobile', label: 'Mobile' }, { field: 'phone', label: 'Phone' }, { field: 'description', label: 'Description' },
];

/** A catalogue description as a help sentence (technical first words such as `ldap://` or `sqlite` keep their case). */
const sentence = (s: string) => `${/^(ldaps?:|sqlite)/.test(s) ? s[0] : s[0]!.toUpperCase()}${s.slice(1)}${s.endsWith('.') ? '' : '.'}`;

/** A key of the type's schema: its help text, whether it is required, its default. */
function keyInfo(type: StoreType, key: string): { description: string; required: boolean; default?: string } | undefined {
  const schema = resolverType(type)?.schema;
  const prop = schema?.properties[key] as { description?: string; default?: unknown } | undefined;
  if (!schema || !prop) return undefined;
  // the schema lists keys with a default as required too (defaults are filled in before the check)
  return { description: prop.description ?? '', required: (schema.required ?? []).includes(key) && prop.default === undefined, ...(prop.default !== undefined ? { default: String(prop.default) } : {}) };
}

/** A field with the type's catalogue entry: help text, required, default as placeholder. */
function field(type: StoreType, key: string, label: string, kind: FormField['kind'] = 'text', extra: Partial<FormField> = {}): FormField {
  const def = keyInfo(type, key);
  if (!def) throw new Error(`${type} has no key ${key}`);
  return {
    key, label, kind, help: sentence(def.description),
    ...(def.required ? { required: true } : {}),
    ...(def.default !== undefined && kind !== 'checkbox' ? { placeholder: def.default } : {}),
    ...extra,
  };
}

export function storeForm(type: StoreType): StoreForm {
  if (type === 'ldapresolver') {
    return {
      type,
      groups: [
        {
          legend: 'Connection',
          fields: [
            field(type, 'LDAPURI', 'Server URI', 'text', { placeholder: 'ldaps://ldap.example.org' }),
            field(type, 'LDAPBASE', 'Search base', 'text', { placeholder: 'ou=people,dc=example,dc=org' }),
            field(type, 'BINDDN', 'Service account (bind DN)'),
            field(type, 'BINDPW', 'Service account password', 'password'),
            field(type, 'EnforceTLS', 'Use StartTLS on ldap:// URIs', 'checkbox', { help: 'Without TLS, user passwords cross the network in clear text; ldaps:// URIs always use TLS.' }),
            field(type, 'only_trusted_certs', 'Verify the server certificate', 'checkbox', { help: 'Checks the certificate chain and the host name; turn off only to try a test directory.' }),
            field(type, 'CACERTIFICATE', 'CA certificate (PEM)', 'textarea', { placeholder: '-----BEGIN CERTIFICATE-----' }),
            field(type, 'TIMEOUT', 'Timeouts (seconds)'),
          ],
        },
        {
          legend: 'Users and attributes',
          presets: true,
          fields: [
            field(type, 'LOGINNAMEATTRIBUTE', 'Login name attribute'),
            field(type, 'LDAPFILTER', 'Filter for one user'),
            field(type, 'LDAPSEARCHFILTER', 'Filter for user lists'),
            field(type, 'UIDTYPE', 'User id'),
          ],
          mapping: {
            key: 'USERINFO', label: 'Attribute of each user field',
            help: 'The LDAP attribute that holds each field; empty fields are not read.',
            rows: [{ field: 'username', label: 'Login name' }, ...PERSON_ROWS],
          },
        },
        {
          legend: 'Limits', advanced: true,
          fields: [field(type, 'SIZELIMIT', 'Most users in a list'), field(type, 'BLOCK_SECONDS', 'Skip a failing server for (seconds)')],
        },
      ],
      carried: ['NOREFERRALS', 'readonly'],
    };
  }
  if (type === 'sqlresolver') {
    return {
      type,
      groups: [
        {
          legend: 'Database',
          fields: [
            field(type, 'Connect', 'Database URL', 'text', { placeholder: 'postgresql://otpd@db.example.org/app' }),
            field(type, 'Driver', 'Driver (instead of the URL)', 'select', {
              options: [{ value: '', label: '— from the URL —' }, { value: 'sqlite', label: 'SQLite' }, { value: 'postgresql', label: 'PostgreSQL' }, { value: 'mysql', label: 'MariaDB / MySQL' }],
            }),
            field(type, 'Server', 'Server'),
            field(type, 'Port', 'Port'),
            field(type, 'Database', 'Database'),
            field(type, 'User', 'Database user'),
            field(type, 'Password', 'Database password', 'password'),
            field(type, 'conParams', 'Extra connection parameters'),
            field(type, 'TIMEOUT', 'Timeout (seconds)'),
          ],
        },
        {
          legend: 'Users table',
          fields: [field(type, 'Table', 'Table'), field(type, 'Where', 'Only rows where')],
          mapping: {
            key: 'Map', label: 'Column of each user field',
            help: 'The column that holds each field; user id and login name are required, the password column is needed for password checks.',
            rows: [
              { field: 'userid', label: 'User id', required: true }, { field: 'username', label: 'Login name', required: true },
              { field: 'password', label: 'Password hash' }, { field: 'salt', label: 'Salt' }, ...PERSON_ROWS,
            ],
          },
        },
        { legend: 'Limits', advanced: true, fields: [field(type, 'Limit', 'Most users in a list')] },
      ],
      carried: ['Encoding', 'readonly'],
    };
  }
  return {
    type,
    groups: [{ legend: 'File', fields: [field(type, 'fileName', 'File', 'text', { placeholder: '/etc/passwd' })] }],
    carried: ['readonly'],
  };
}

/** What the form shows: values by input name (mapping rows as `USERINFO.email`, extras as `USERINFO.more`). */
export type FormValues = Record<string, string>;

/** Which secret keys have a stored value (the field then says "set — leave empty to keep"). */
export type SecretsSet = Record<string, boolean>;

const allFields = (form: StoreForm) => form.groups.flatMap((g) => g.fields);
const defaultOf = (type: StoreType, key: string) => keyInfo(type, key)?.default;

function spreadMapping(mapping: Mapping, json: string | undefined, into: FormValues): void {
  let parsed: Record<string, unknown> = {};
  try {
    const v = JSON.parse(json ?? '{}') as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) parsed = v as Record<string, unknown>;
  } catch {
    into[`${mapping.key}.more`] = json ?? '';
    return;
  }
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(parsed)) {
    if (mapping.rows.some((r) => r.field === k)) into[`${mapping.key}.${k}`] = String(v);
    else rest[k] = v;
  }
  into[`${mapping.key}.more`] = Object.keys(rest).length ? JSON.stringify(rest) : '';
}

/** Preset values (OpenLDAP, Active Directory) in the form's shape. */
export function presetValues(preset: 'openldap' | 'ad'): FormValues {
  const p = LDAP_PRESETS[preset];
  const out: FormValues = { LOGINNAMEATTRIBUTE: p.LOGINNAMEATTRIBUTE!, LDAPFILTER: p.LDAPFILTER!, LDAPSEARCHFILTER: p.LDAPSEARCHFILTER!, UIDTYPE: p.UIDTYPE! };
  const mapping = storeForm('ldapresolver').groups.find((g) => g.mapping)!.mapping!;
  for (const r of mapping.rows) out[`USERINFO.${r.field}`] = '';
  spreadMapping(mapping, p.USERINFO, out);
  return out;
}

/** The values of a new resolver's form: the defaults (LDAP: a preset filled in). */
export function newValues(type: StoreType, preset: 'openldap' | 'ad' = 'openldap'): FormValues {
  const out: FormValues = {};
  for (const f of allFields(storeForm(type))) if (f.kind === 'checkbox') out[f.key] = defaultOf(type, f.key) === 'True' ? 'True' : 'False';
  return type === 'ldapresolver' ? { ...out, ...presetValues(preset) } : out;
}

/** `/system/getResolver` data → form values; secrets never (only whether one is set). */
export function storedValues(type: StoreType, data: Record<string, string>): { values: FormValues; secrets: SecretsSet } {
  const form = storeForm(type);
  const values: FormValues = {};
  const secrets: SecretsSet = {};
  for (const f of allFields(form)) {
    const v = data[f.key];
    if (f.kind === 'password') secrets[f.key] = v === CENSORED;
    else if (f.kind === 'checkbox') values[f.key] = (v ?? defaultOf(type, f.key)) === 'True' ? 'True' : 'False';
    else values[f.key] = v ?? '';
  }
  for (const g of form.groups) if (g.mapping) spreadMapping(g.mapping, data[g.mapping.key], values);
  for (const k of form.carried) if (data[k] !== undefined) values[k] = data[k];
  return { values, secrets };
}

/** The form as posted, for showing it again (passwords left out: they are never sent back). */
export function postedValues(type: StoreType, body: Record<string, string>): FormValues {
  const form = storeForm(type);
  const values: FormValues = {};
  for (const f of allFields(form)) {
    if (f.kind === 'password') continue;
    values[f.key] = f.kind === 'checkbox' ? (body[f.key] === 'True' ? 'True' : 'False') : body[f.key] ?? '';
  }
  for (const g of form.groups) {
    if (!g.mapping) continue;
    for (const r of g.mapping.rows) values[`${g.mapping.key}.${r.field}`] = body[`${g.mapping.key}.${r.field}`] ?? '';
    values[`${g.mapping.key}.more`] = body[`${g.mapping.key}.more`] ?? '';
  }
  for (const k of form.carried) if (body[k] !== undefined) values[k] = body[k];
  return values;
}

/** A problem the page finds before calling the API (a mapping's extra JSON): input name → message. */
export interface FormProblem { field: string; message: string }

/**
 * The posted form → the resolver keys for `/system/setResolver` and `/system/testResolver`.
 * A secret left empty is sent as `__CENSORED__` when one is stored (the API keeps it), else not at all.
 */
export function apiConfig(type: StoreType, body: Record<string, string>, secrets: SecretsSet): Record<string, string> | FormProblem {
  const form = storeForm(type);
  const out: Record<string, string> = {};
  for (const f of allFields(form)) {
    const v = body[f.key] ?? '';
    if (f.kind === 'password') {
      if (v !== '') out[f.key] = v;
      else if (secrets[f.key]) out[f.key] = CENSORED;
    } else if (f.kind === 'checkbox') out[f.key] = v === 'True' ? 'True' : 'False';
    else out[f.key] = v;
  }
  for (const g of form.groups) {
    const m = g.mapping;
    if (!m) continue;
    const json: Record<string, string> = {};
    const more = (body[`${m.key}.more`] ?? '').trim();
    if (more !== '') {
      let extra: unknown;
      try {
        extra = JSON.parse(more);
      } catch {
        extra = undefined;
      }
      if (!extra || typeof extra !== 'object' || Array.isArray(extra) || Object.values(extra).some((v) => typeof v !== 'string')) {
        return { field: `${m.key}.more`, message: 'Write a JSON object of user field → attribute (LDAP) or column (SQL), e.g. {"gender": "gender"}.' };
      }
      Object.assign(json, extra);
    }
    for (const r of m.rows) {
      const v = (body[`${m.key}.${r.field}`] ?? '').trim();
      if (v !== '') json[r.field] = v;
    }
    out[m.key] = Object.keys(json).length ? JSON.stringify(json) : '';
  }
  for (const k of form.carried) if (body[k] !== undefined && body[k] !== '') out[k] = body[k];
  return out;
}

/** The input a parameter name of an API refusal belongs to (`USERINFO.mail` → its mapping row). */
export function inputOf(type: StoreType, param: string): string | undefined {
  const form = storeForm(type);
  if (param === 'name') return 'name';
  const [head, sub] = param.split('.', 2) as [string, string | undefined];
  const mapping = form.groups.find((g) => g.mapping?.key.toLowerCase() === head.toLowerCase())?.mapping;
  if (mapping) {
    if (sub === undefined) return `${mapping.key}.${mapping.rows[0]!.field}`;
    return mapping.rows.some((r) => r.field === sub) ? `${mapping.key}.${sub}` : `${mapping.key}.more`;
  }
  if (param === 'Connect or Driver') return 'Connect';
  return allFields(form).find((f) => f.key.toLowerCase() === param.toLowerCase())?.key;
}

/** Label of an input, for the summary at the top ("Server URI"). */
export function labelOf(type: StoreType, input: string): string {
  if (input === 'name') return 'Name';
  const form = storeForm(type);
  const [head, sub] = input.split('.', 2) as [string, string | undefined];
  const mapping = form.groups.find((g) => g.mapping?.key === head)?.mapping;
  if (mapping) return sub === 'more' ? `${mapping.label}: other fields` : `${mapping.label}: ${mapping.rows.find((r) => r.field === sub)?.label ?? sub}`;
  return allFields(form).find((f) => f.key === input)?.label ?? input;
}
