import { CENSORED } from '../../config/secret-fields.ts';

/**
 * The provider forms, derived from each class's config schema as `/system/getProviderDef` gives
 * it (JSON Schema): a field per schema key with its input kind from the key's type (text,
 * number, yes/no, a choice of constants, a JSON object), "(required)" from `required` when the
 * key has no default, the default shown as the placeholder and said in the help, the
 * description as the help, and `secret: true` keys as write-only password fields. This file adds
 * only words (plain labels beside LinOTP's key, help where a schema has no description) and the
 * grouping; a key the schema gains appears under "More settings" by itself. And the two
 * translations: posted form → the config JSON of `/system/setProvider` (a secret left empty is
 * sent as `__CENSORED__`, which keeps the stored one) and the stored config → form values.
 */

/** A JSON Schema node as getProviderDef sends it (TypeBox's output). */
export interface SchemaNode {
  type?: string;
  const?: unknown;
  anyOf?: SchemaNode[];
  pattern?: string;
  default?: unknown;
  description?: string;
  secret?: boolean;
  properties?: Record<string, SchemaNode>;
  patternProperties?: Record<string, SchemaNode>;
  required?: string[];
}

/** One provider class of `/system/getProviderDef`. */
export interface ProviderClass { className: string; type: 'sms' | 'email'; name: string; schema: SchemaNode }

export interface ProviderField {
  /** The config key (LinOTP's name); the input is `config.<key>`, its id `f-<key>`. */
  key: string;
  label: string;
  kind: 'text' | 'number' | 'password' | 'checkbox' | 'select' | 'json' | 'textarea';
  help: string;
  required: boolean;
  placeholder?: string;
  options?: { value: string; label: string }[];
  node: SchemaNode;
}

export interface ProviderGroup { legend: string; fields: ProviderField[]; advanced?: boolean }
export interface ProviderForm { cls: ProviderClass; groups: ProviderGroup[] }

/** Form values by config key (checkboxes `'true'` or `''`). */
export type FormValues = Record<string, string>;
/** Which secret keys have a stored value. */
export type SecretsSet = Record<string, boolean>;

/** Plain labels; the LinOTP key stands beside each. Per class where the same key means something else. */
const LABELS: Record<string, string> = {
  URL: 'Gateway URL', HTTP_Method: 'HTTP method', SMS_PHONENUMBER_KEY: 'Parameter for the number', SMS_TEXT_KEY: 'Parameter for the text',
  PARAMETER: 'Extra parameters (JSON)', USERNAME: 'User name', PASSWORD: 'Password', AUTH_TYPE: 'Authentication', AUTHENTICATION: 'Authentication',
  PROXY: 'Proxy', HEADERS: 'Extra headers (JSON)', SERVER_CERTIFICATE: 'CA certificate file', RETURN_SUCCESS: 'Success answer starts with',
  RETURN_SUCCESS_REGEX: 'Success answer matches', RETURN_FAIL: 'Failure answer starts with', RETURN_FAIL_REGEX: 'Failure answer matches',
  CHECK_SSL: 'Check SSL (LinOTP)', MSISDN: 'Digits only', SUPPRESS_PREFIX: 'Strip this prefix', timeout: 'Timeout override', TIMEOUT: 'Timeout override',
  PAYLOAD: 'Body template (JSON)', CLIENT_CERTIFICATE_FILE: 'Client certificate file',
  mailserver: 'Mail server', mailserver_port: 'Port', start_tls: 'Require STARTTLS', use_ssl: 'Implicit TLS', keyfile: 'Client key file',
  certfile: 'Client certificate file', mailuser: 'User name', mailpassword: 'Password', mailsender: 'Sender', mailto: 'Recipient',
  subject: 'Subject', body: 'Body', raise_exception: 'Raise exception (LinOTP)',
  server: 'SMSC host', port: 'Port', system_id: 'System id', password: 'Password', system_type: 'System type', source_addr: 'Sender address',
  source_addr_ton: 'Sender TON', source_addr_npi: 'Sender NPI', dest_addr_ton: 'Destination TON', dest_addr_npi: 'Destination NPI',
  target_encoding: 'Encoding', registered_delivery: 'Delivery receipts',
  CONFIGFILE: 'gnokii config file', SMSC: 'Message centre number',
  SMTP_SERVER: 'Mail server', SMTP_PORT: 'Port', START_TLS: 'Require STARTTLS', USE_SSL: 'Implicit TLS', KEYFILE: 'Client key file',
  CERTFILE: 'Client certificate file', SMTP_USER: 'User name', SMTP_PASSWORD: 'Password', EMAIL_FROM: 'Sender', EMAIL_SUBJECT: 'Subject', TEMPLATE: 'Message template',
};
const CLASS_LABELS: Record<string, Record<string, string>> = {
  RestSMSProvider: { URL: 'Endpoint URL', SMS_TEXT_KEY: 'Path of the text in the body', SMS_PHONENUMBER_KEY: 'Path of the number in the body' },
};

/** Help where the schema has no description (docs/delivery.md's words). */
const HELP: Record<string, string> = {
  SMS_PHONENUMBER_KEY: 'The request parameter that carries the phone number.',
  SMS_TEXT_KEY: 'The request parameter that carries the message text.',
  PARAMETER: 'A JSON object of static parameters, e.g. {"from": "ACME"}, merged last (they can override the two above).',
  USERNAME: 'HTTP authentication; without it, user:password@ in the URL is used.',
  PASSWORD: 'HTTP authentication password.',
  AUTH_TYPE: 'How the user name and password are sent.',
  AUTHENTICATION: 'How the user name and password are sent.',
  PROXY: 'http://[user:pw@]proxy:port, or a JSON object {"http": …, "https": …}; https goes through CONNECT.',
  HEADERS: 'A JSON object of extra request headers, e.g. {"X-Api-Key": "…"}.',
  RETURN_SUCCESS_REGEX: 'A regular expression the answer body must match. The first of the four answer checks that is set decides; none set = any 2xx answer is success.',
  RETURN_FAIL_REGEX: 'A regular expression that marks a refusal when the answer body matches.',
  CHECK_SSL: 'LinOTP\'s key: only true is accepted — otpd verifies certificates unless the CA certificate file is false.',
  TIMEOUT: 'Seconds, or "connect,read"; overrides the provider timeout.',
  timeout: 'Seconds, or "connect,read"; overrides the provider timeout.',
  PAYLOAD: 'The JSON body sent for each message, e.g. {"to": "<phone>", "text": "<message>"}; the two paths below say where the number and the text go.',
  CLIENT_CERTIFICATE_FILE: 'One PEM file with the client certificate and its key.',
  SERVER_CERTIFICATE: 'A CA file to trust, or false to skip verification (not recommended).',
  start_tls: 'Upgrade the connection with STARTTLS (port 587).', use_ssl: 'TLS from the first byte (port 465).',
  keyfile: 'PEM key of a client certificate.', certfile: 'PEM client certificate.', mailuser: 'SMTP AUTH user.', mailpassword: 'SMTP AUTH password.',
  mailsender: 'The From address.', subject: 'The subject; <phone> and <otp> (the whole SMS text) are replaced.', body: 'The body; <phone> and <otp> are replaced.',
  raise_exception: 'LinOTP\'s key: only true is accepted — otpd counts every failed send as a failure and records it in the delivery log.',
  server: 'Host name or address of the SMSC.', system_id: 'The account at the SMSC (bind).', password: 'The SMSC account password.',
  system_type: 'System type sent on bind, if the SMSC wants one.', source_addr: 'The sender number or name.',
  SMTP_SERVER: 'Host name or address of the mail server.', START_TLS: 'Require STARTTLS; without it otpd still upgrades when the server offers STARTTLS.',
  USE_SSL: 'TLS from the first byte (port 465).', KEYFILE: 'PEM key of a client certificate.', CERTFILE: 'PEM client certificate.',
  SMTP_USER: 'SMTP AUTH user; AUTH is used when set.', SMTP_PASSWORD: 'SMTP AUTH password.', EMAIL_FROM: 'The From address.',
  EMAIL_SUBJECT: 'Used when no emailsubject policy gives one.',
};

/** Keys in the order of each class's groups; keys of the schema not named here go to "More settings". */
const LAYOUT: Record<string, { legend: string; keys: string[] }[]> = {
  HttpSMSProvider: [
    { legend: 'Gateway', keys: ['URL', 'HTTP_Method', 'SMS_PHONENUMBER_KEY', 'SMS_TEXT_KEY', 'PARAMETER'] },
    { legend: 'Authentication', keys: ['USERNAME', 'PASSWORD', 'AUTH_TYPE'] },
    { legend: 'Answer check', keys: ['RETURN_SUCCESS', 'RETURN_SUCCESS_REGEX', 'RETURN_FAIL', 'RETURN_FAIL_REGEX'] },
  ],
  RestSMSProvider: [
    { legend: 'Gateway', keys: ['URL', 'PAYLOAD', 'SMS_TEXT_KEY', 'SMS_PHONENUMBER_KEY'] },
    { legend: 'Authentication', keys: ['USERNAME', 'PASSWORD', 'AUTHENTICATION'] },
  ],
  SmtpSMSProvider: [
    { legend: 'Mail server', keys: ['mailserver', 'mailserver_port', 'start_tls', 'use_ssl', 'mailuser', 'mailpassword'] },
    { legend: 'Message', keys: ['mailsender', 'mailto', 'subject', 'body'] },
  ],
  SMPPSMSProvider: [
    { legend: 'SMSC', keys: ['server', 'port', 'system_id', 'password', 'system_type'] },
    { legend: 'Addresses', keys: ['source_addr', 'source_addr_ton', 'source_addr_npi', 'dest_addr_ton', 'dest_addr_npi'] },
    { legend: 'Message', keys: ['target_encoding', 'registered_delivery'] },
  ],
  DeviceSMSProvider: [{ legend: 'Device', keys: ['CONFIGFILE', 'SMSC'] }],
  SMTPEmailProvider: [
    { legend: 'Mail server', keys: ['SMTP_SERVER', 'SMTP_PORT', 'START_TLS', 'USE_SSL', 'SMTP_USER', 'SMTP_PASSWORD'] },
    { legend: 'Message', keys: ['EMAIL_FROM', 'EMAIL_SUBJECT', 'TEMPLATE'] },
  ],
};
/** Keys whose text is long (a whole MIME message). */
const LONG_TEXT = new Set(['TEMPLATE']);

/** The branches of a node, nested anyOf flattened. */
function branches(node: SchemaNode): SchemaNode[] {
  return node.anyOf ? node.anyOf.flatMap(branches) : [node];
}
const accepts = (node: SchemaNode, type: string) => branches(node).some((b) => b.type === type);
const isBoolLike = (node: SchemaNode) => accepts(node, 'boolean') && branches(node).every((b) => b.type === 'boolean' || (b.type === 'string' && /TRUE/.test(b.pattern ?? '')));
const isNumberLike = (node: SchemaNode) => accepts(node, 'number') && branches(node).every((b) => b.type === 'number' || (b.type === 'string' && b.pattern !== undefined));
/** A free-form JSON object (HEADERS, PARAMETER, PAYLOAD): an object without named properties. */
const isJsonMap = (node: SchemaNode) => branches(node).some((b) => b.type === 'object' && !b.properties) && branches(node).every((b) => b.type === 'object' || (b.type === 'string' && !b.pattern));

function kindOf(key: string, node: SchemaNode): ProviderField['kind'] {
  if (node.secret) return 'password';
  const all = branches(node);
  if (all.length > 1 && all.every((b) => 'const' in b)) return 'select';
  if (isBoolLike(node)) return 'checkbox';
  if (isJsonMap(node)) return 'json';
  if (isNumberLike(node)) return 'number';
  return LONG_TEXT.has(key) ? 'textarea' : 'text';
}

const sentence = (s: string) => {
  const t = s.trim();
  const first = /^(otpd|[a-z]+[A-Z_]|<)/.test(t) ? t : `${t[0]!.toUpperCase()}${t.slice(1)}`;
  return /[.!?)]$/.test(first) ? first : `${first}.`;
};

function fieldOf(cls: ProviderClass, key: string, node: SchemaNode): ProviderField {
  const kind = kindOf(key, node);
  const hasDefault = node.default !== undefined && node.default !== '';
  const required = (cls.schema.required ?? []).includes(key) && node.default === undefined;
  let help = node.description ? sentence(node.description) : HELP[key] ?? '';
  if (hasDefault && kind !== 'select') help = `${help}${help ? ' ' : ''}Empty means ${String(node.default)}.`;
  const field: ProviderField = { key, label: CLASS_LABELS[cls.className]?.[key] ?? LABELS[key] ?? key, kind, help, required, node };
  if (hasDefault && kind !== 'select' && kind !== 'checkbox') field.placeholder = String(node.default);
  if (kind === 'select') {
    const seen = new Set<string>();
    const options = branches(node).map((b) => String(b.const)).filter((v) => !seen.has(v.toLowerCase()) && seen.add(v.toLowerCase()));
    const blank = hasDefault ? `— default (${String(node.default)}) —` : '— not set —';
    field.options = [...(required ? [] : [{ value: '', label: blank }]), ...options.map((v) => ({ value: v, label: v }))];
  }
  return field;
}

/** The form of a class: its layout's groups, then every other schema key under "More settings". */
export function providerForm(cls: ProviderClass): ProviderForm {
  const props = cls.schema.properties ?? {};
  const placed = new Set<string>();
  const groups: ProviderGroup[] = [];
  for (const g of LAYOUT[cls.className] ?? []) {
    const fields = g.keys.filter((k) => k in props).map((k) => fieldOf(cls, k, props[k]!));
    fields.forEach((f) => placed.add(f.key));
    if (fields.length) groups.push({ legend: g.legend, fields });
  }
  const rest = Object.keys(props).filter((k) => !placed.has(k)).map((k) => fieldOf(cls, k, props[k]!));
  if (rest.length) groups.push({ legend: 'More settings', fields: rest, advanced: true });
  return { cls, groups };
}

export const allFields = (form: ProviderForm) => form.groups.flatMap((g) => g.fields);

/** A stored value as the form shows it. */
function shown(field: ProviderField, v: unknown): string {
  if (v === undefined || v === null) return '';
  if (field.kind === 'checkbox') return ['true', '1', 'yes', 'on'].includes(String(v).trim().toLowerCase()) ? 'true' : '';
  if (field.kind === 'select') return field.options!.find((o) => o.value.toLowerCase() === String(v).toLowerCase())?.value ?? String(v);
  if (typeof v === 'object') return field.kind === 'json' ? JSON.stringify(v, null, 2) : JSON.stringify(v);
  return String(v);
}

/** The stored config (getProvider's censored `Config`) → form values; secrets only as "set". */
export function storedValues(form: ProviderForm, config: Record<string, unknown>): { values: FormValues; secrets: SecretsSet } {
  const values: FormValues = {};
  const secrets: SecretsSet = {};
  for (const f of allFields(form)) {
    if (f.kind === 'password') secrets[f.key] = config[f.key] === CENSORED || (typeof config[f.key] === 'string' && config[f.key] !== '');
    else values[f.key] = shown(f, config[f.key]);
  }
  return { values, secrets };
}

/** The form as posted, to show it again (passwords left out: never sent back). */
export function postedValues(form: ProviderForm, body: Record<string, string>): FormValues {
  const values: FormValues = {};
  for (const f of allFields(form)) {
    if (f.kind === 'password') continue;
    const v = body[`config.${f.key}`] ?? '';
    values[f.key] = f.kind === 'checkbox' ? (v === 'true' ? 'true' : '') : v;
  }
  return values;
}

/** Password fields the admin typed into (the form then asks to type them again). */
export const typedSecrets = (form: ProviderForm, body: Record<string, string>) =>
  allFields(form).filter((f) => f.kind === 'password' && (body[`config.${f.key}`] ?? '') !== '').map((f) => f.key);

/**
 * A problem of the form: the input it concerns and a sentence. Config keys by name; the
 * provider's own fields and the test message's as `@name`, `@timeout`, `@to`, `@message` (a
 * config key may be called `timeout`).
 */
export interface Problem { field?: string; text: string; detail?: string }

/** Parser problem of a JSON text with line and column, in people's words. */
function jsonProblem(text: string, e: Error): string {
  const m = /at position (\d+)/.exec(e.message);
  const pos = m ? Number(m[1]) : text.length;
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const column = pos - before.lastIndexOf('\n');
  const what = e.message.replace(/ in JSON at position \d+.*$/s, '').replace(/^Unexpected end of JSON input$/, 'it ends too early');
  const quotes = /'/.test(text) ? ' Use double quotes: single quotes are not JSON.' : '';
  return `Not valid JSON: ${what} (line ${line}, column ${column}).${quotes}`;
}

/** A typed text → the JSON value its schema accepts (a number, true/false, an object or list written as JSON). */
function valueOf(field: ProviderField, raw: string): { value: unknown } | { problem: string } {
  const text = raw.trim();
  const { node } = field;
  if (field.kind === 'json') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      return { problem: jsonProblem(text, e as Error) };
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return { problem: 'Write a JSON object: {"name": "value", …}.' };
    return { value: parsed };
  }
  if ((text.startsWith('{') && accepts(node, 'object')) || (text.startsWith('[') && accepts(node, 'array'))) {
    try {
      return { value: JSON.parse(text) };
    } catch (e) {
      return { problem: jsonProblem(text, e as Error) };
    }
  }
  if (/^(true|false)$/i.test(text) && accepts(node, 'boolean')) return { value: text.toLowerCase() === 'true' };
  if (/^\d+(\.\d+)?$/.test(text) && accepts(node, 'number')) return { value: Number(text) };
  return { value: field.kind === 'textarea' ? raw : text };
}

/**
 * The posted form → the config for `/system/setProvider`. Empty fields are left out (the
 * defaults apply; a required one is then refused by the API, next to its field); a secret left
 * empty is `__CENSORED__` when one is stored (the API keeps it). JSON that does not parse is
 * said next to its field before anything is sent.
 */
export function apiConfig(form: ProviderForm, body: Record<string, string>, secrets: SecretsSet): { config: Record<string, unknown> } | { problems: Problem[] } {
  const config: Record<string, unknown> = {};
  const problems: Problem[] = [];
  for (const f of allFields(form)) {
    const raw = body[`config.${f.key}`] ?? '';
    if (f.kind === 'password') {
      if (raw !== '') config[f.key] = raw;
      else if (secrets[f.key]) config[f.key] = CENSORED;
    } else if (f.kind === 'checkbox') {
      if (raw === 'true') config[f.key] = true;
    } else if (raw.trim() !== '') {
      const v = valueOf(f, raw);
      if ('problem' in v) problems.push({ field: f.key, text: v.problem });
      else config[f.key] = v.value;
    }
  }
  return problems.length ? { problems } : { config };
}

const capital = (s: string) => `${s[0]!.toUpperCase()}${s.slice(1)}`;

/** One `path: why` of ERR2007 in people's words. */
function because(why: string): string {
  if (why === 'required') return 'Required.';
  if (why === 'unknown key') return 'otpd does not know this key.';
  return sentence(capital(why));
}

/**
 * A refusal of `/system/setProvider` next to its field: ERR2007 lists every bad key with its path
 * (`providers.sms.main.config.URL: required; providers.sms.main.timeout: …`), ERR2501 is the name.
 */
export function refusalProblems(form: ProviderForm, type: string, name: string, message: string, code: number): Problem[] {
  if (code === 2501) return [{ field: '@name', text: 'Use 1 to 64 letters, digits, _ . or -.', detail: message }];
  const missing = /^Missing parameter: '([^']+)'$/.exec(message);
  if (missing) return [{ ...(['name', 'timeout'].includes(missing[1]!) ? { field: `@${missing[1]}` } : {}), text: 'Required.', detail: message }];
  const list = message.replace(/^Invalid provider config: /, '');
  const prefix = `providers.${type}.${name}.`;
  const keys = new Set(allFields(form).map((f) => f.key));
  const out: Problem[] = [];
  for (const part of list.split(/; (?=providers\.)/)) {
    const m = part.startsWith(prefix) ? /^([^:]*): (.*)$/s.exec(part.slice(prefix.length)) : null;
    if (!m) {
      out.push({ text: sentence(capital(part)), detail: part === message ? '' : message });
      continue;
    }
    const [, path, why] = m as unknown as [string, string, string];
    const key = path.startsWith('config.') ? path.slice('config.'.length).split('.')[0]! : path;
    const field = key === 'timeout' && !path.startsWith('config.') ? '@timeout' : keys.has(key) ? key : undefined;
    const sub = path.startsWith('config.') ? path.slice('config.'.length + key.length + 1) : '';
    const where = field ? sub : path.replace(/^config\./, '');
    out.push({ ...(field ? { field } : {}), text: `${where ? `${where}: ` : ''}${because(why)}`, detail: part });
  }
  return out;
}
