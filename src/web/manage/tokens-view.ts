import type { OtpdError } from '../../errors.ts';

/**
 * What the token pages show, made from the JSON API's answers (`/admin/show`'s LinOTP token
 * dictionaries, `/audit/search` rows): pure functions, no I/O, so the pages only call routes
 * and render.
 */

/** One token as the pages show it. */
export interface TokenView {
  serial: string;
  /** LinOTP's type name as stored (`hmac`, `totp`, `sms`, …). */
  type: string;
  typeLabel: string;
  description: string;
  /** `login@realm`, the user id when the user store no longer knows it, or '' (not assigned). */
  owner: string;
  assigned: boolean;
  realms: string[];
  active: boolean;
  /** The status word shown beside its colour: disabled wins over locked. */
  status: 'active' | 'disabled' | 'locked';
  failCount: number;
  maxFail: number;
  counter: number;
  /** ISO time of creation (UTC), or '' when the API gave none. */
  created: string;
  lastSuccess: string;
  info: Record<string, string>;
}

const TYPE_LABELS: Record<string, string> = {
  hmac: 'HOTP', totp: 'TOTP', sms: 'SMS', email: 'E-mail', spass: 'spass (PIN only)', pw: 'pw (static password)',
};

export const typeLabel = (type: string): string => TYPE_LABELS[type] ?? type;

const str = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v));
const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v ?? 0) || 0);
const isoOf = (v: unknown): string => {
  const ms = Date.parse(str(v));
  return Number.isNaN(ms) ? '' : new Date(ms).toISOString();
};

function parseInfo(text: unknown): Record<string, string> {
  try {
    const parsed = JSON.parse(str(text)) as unknown;
    if (!parsed || typeof parsed !== 'object') return {};
    return Object.fromEntries(Object.entries(parsed as Record<string, unknown>).map(([k, v]) => [k, str(v)]));
  } catch {
    return {};
  }
}

/** One `/admin/show` token dictionary (`LinOtp.*`, `User.*` keys) as the pages show it. */
export function tokenView(d: Record<string, unknown>): TokenView {
  const type = str(d['LinOtp.TokenType']).toLowerCase();
  const realms = Array.isArray(d['LinOtp.RealmNames']) ? (d['LinOtp.RealmNames'] as unknown[]).map(str) : [];
  const userId = str(d['LinOtp.Userid']);
  const login = str(d['User.username']);
  const active = d['LinOtp.Isactive'] === true;
  const failCount = num(d['LinOtp.FailCount']);
  const maxFail = num(d['LinOtp.MaxFail']);
  return {
    serial: str(d['LinOtp.TokenSerialnumber']),
    type,
    typeLabel: typeLabel(type),
    description: str(d['LinOtp.TokenDesc']),
    owner: login ? `${login}${realms[0] ? `@${realms[0]}` : ''}` : userId ? `user id ${userId} (${str(d['LinOtp.IdResolver'])})` : '',
    assigned: userId !== '',
    realms,
    active,
    status: !active ? 'disabled' : maxFail > 0 && failCount >= maxFail ? 'locked' : 'active',
    failCount,
    maxFail,
    counter: num(d['LinOtp.Count']),
    created: isoOf(d['LinOtp.CreationDate']),
    lastSuccess: isoOf(d['LinOtp.LastAuthSuccess']),
    info: parseInfo(d['LinOtp.TokenInfo']),
  };
}

/** `YYYY-MM-DD HH:MM:SS` of an ISO time (the UTC text the browser's script turns into local time). */
export const shortTime = (iso: string): string => (iso ? iso.replace('T', ' ').slice(0, 19) : '');

// ---- the list: filter, sort, paging --------------------------------------------------------

export const PAGE_SIZE = 50;

/** The list's sortable columns and `/admin/show`'s `sortby` for each. */
export const SORT_COLUMNS = {
  serial: 'TokenSerialnumber', type: 'TokenType', user: 'Userid', description: 'TokenDesc', failcount: 'FailCount', created: 'CreationDate',
} as const;
export type SortColumn = keyof typeof SORT_COLUMNS;

export interface ListQuery {
  q: string;
  realm: string;
  sort: SortColumn;
  dir: 'asc' | 'desc';
  page: number;
}

/** The list page's GET parameters, made safe (unknown sort → serial, page ≥ 1). */
export function listQuery(query: unknown): ListQuery {
  const q = (query ?? {}) as Record<string, unknown>;
  const one = (k: string) => (typeof q[k] === 'string' ? (q[k] as string) : '');
  const sort = Object.hasOwn(SORT_COLUMNS, one('sort')) ? (one('sort') as SortColumn) : 'serial';
  const page = /^\d{1,6}$/.test(one('page')) ? Math.max(1, Number(one('page'))) : 1;
  return { q: one('q').trim().slice(0, 100), realm: one('realm').trim().slice(0, 100), sort, dir: one('dir') === 'desc' ? 'desc' : 'asc', page };
}

/** `/admin/show`'s parameters for a list query. */
export function showParams(l: ListQuery): Record<string, string> {
  return {
    ...(l.q ? { filter: l.q } : {}),
    ...(l.realm ? { viewrealm: l.realm } : {}),
    sortby: SORT_COLUMNS[l.sort], sortdir: l.dir, page: String(l.page), pagesize: String(PAGE_SIZE),
  };
}

/** The list URL for a query with some parts changed (only non-default parts are written). */
export function listHref(l: ListQuery, change: Partial<ListQuery> = {}): string {
  const n = { ...l, ...change };
  const p = new URLSearchParams();
  if (n.q) p.set('q', n.q);
  if (n.realm) p.set('realm', n.realm);
  if (n.sort !== 'serial') p.set('sort', n.sort);
  if (n.dir !== 'asc') p.set('dir', n.dir);
  if (n.page > 1) p.set('page', String(n.page));
  const s = p.toString();
  return s ? `/manage/tokens?${s}` : '/manage/tokens';
}

/** A column header: its link (sorting by it, or the other way round when it is the current one). */
export function sortHeader(l: ListQuery, column: SortColumn, label: string): { label: string; href: string; sort?: 'ascending' | 'descending' } {
  const current = l.sort === column;
  return {
    label,
    href: listHref(l, { sort: column, dir: current && l.dir === 'asc' ? 'desc' : 'asc', page: 1 }),
    ...(current ? { sort: l.dir === 'asc' ? 'ascending' as const : 'descending' as const } : {}),
  };
}

const count = (n: number) => n.toLocaleString('en');

/** "1–50 of 10,000", the previous/next links and "page 2 of 200". */
export function paging(l: ListQuery, total: number, shown: number) {
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  const first = total === 0 ? 0 : (l.page - 1) * PAGE_SIZE + 1;
  return {
    range: shown === 0 ? `0 of ${count(total)}` : `${count(first)}–${count(first + shown - 1)} of ${count(total)}`,
    page: l.page,
    pages,
    pageText: `page ${count(l.page)} of ${count(pages)}`,
    prev: l.page > 1 ? listHref(l, { page: Math.min(l.page - 1, pages) }) : undefined,
    next: l.page < pages ? listHref(l, { page: l.page + 1 }) : undefined,
  };
}

// ---- errors next to the field ---------------------------------------------------------------

/**
 * The form field an API refusal is about: the parameter its message names (`Missing
 * parameter: 'phone'`, `Invalid parameter 'email_address': …`) through `fields` (API parameter
 * → form field), or the owner field for an unknown user or realm. undefined = the summary only.
 */
export function fieldOf(error: OtpdError, fields: Record<string, string>): string | undefined {
  const named = /parameter:? '([A-Za-z_]+)'/.exec(error.message)?.[1];
  if (named) return fields[named] ?? fields[named.toLowerCase()];
  if (/^user .* not found$|no user store is configured|maximum (allowed )?number of (allowed )?tokens/i.test(error.message)) return fields.user;
  if (/administrative right for this realm/.test(error.message)) return fields.realm;
  return undefined;
}

/** The message as a sentence for people: first letter upper case. */
export const sentence = (message: string): string => (message ? `${message[0]!.toUpperCase()}${message.slice(1)}` : message);

// ---- audit ---------------------------------------------------------------------------------

export interface AuditRow { time: string; action: string; success: boolean; administrator: string; user: string; detail: string }

/** `/audit/search`'s flexigrid rows (`cell`: id, ts, …, action, success, serial, type, user, realm, admin, detail, info). */
export function auditRows(answer: unknown): { rows: AuditRow[]; total: number } {
  const a = (answer ?? {}) as { rows?: { cell: unknown[] }[]; total?: unknown };
  const rows = (Array.isArray(a.rows) ? a.rows : []).map(({ cell }) => ({
    time: str(cell[1]),
    action: str(cell[4]),
    success: str(cell[5]) === '1',
    administrator: str(cell[10]),
    user: [str(cell[8]), str(cell[9])].filter(Boolean).join('@'),
    detail: [str(cell[11]), str(cell[12])].filter(Boolean).join(' — '),
  }));
  return { rows, total: num(a.total) };
}

// ---- enrollment ----------------------------------------------------------------------------

export const ENROLL_TYPES = ['hmac', 'totp', 'sms', 'email', 'spass', 'pw'] as const;
export type EnrollType = (typeof ENROLL_TYPES)[number];

/** The enrollment form's fields by the API parameter each becomes (for errors next to the field). */
export const ENROLL_FIELDS: Record<string, string> = {
  type: 'type', serial: 'serial', prefix: 'serial', otplen: 'otplen', timeStep: 'timestep', timestep: 'timestep',
  phone: 'phone', email_address: 'email', otpkey: 'password', pin: 'pin', description: 'description', user: 'user', realm: 'realm', tokenrealm: 'realm',
};

/**
 * `/admin/init`'s parameters for the enrollment form: only the fields of the chosen type
 * (the form shows all of them when scripts are off), a seed generated by the server for
 * HOTP/TOTP (so the otpauth URL can be shown once), the owner only when a user is given.
 */
export function initParams(body: Record<string, string>): Record<string, string> {
  const type = (ENROLL_TYPES as readonly string[]).includes(body.type ?? '') ? (body.type as EnrollType) : (body.type ?? '');
  const p: Record<string, string> = { type };
  const put = (key: string, value: string | undefined) => {
    if (value !== undefined && value.trim() !== '') p[key] = value.trim();
  };
  put('serial', body.serial);
  put('description', body.description);
  if (body.pin) p.pin = body.pin;
  if (body.user?.trim()) {
    put('user', body.user);
    put('realm', body.realm);
  } else {
    put('tokenrealm', body.realm);
  }
  if (type === 'hmac' || type === 'totp') {
    p.genkey = '1';
    put('otplen', body.otplen);
    if (type === 'totp') put('timeStep', body.timestep);
  }
  if (type === 'sms') p.phone = (body.phone ?? '').trim();
  if (type === 'email') p.email_address = (body.email ?? '').trim();
  if (type === 'pw') p.otpkey = body.password ?? '';
  return p;
}

/** What the form shows again after a refusal: everything typed but the secrets (PIN, password). */
export function keptInput(body: Record<string, string>): Record<string, string> {
  const { pin: _pin, password: _password, ...rest } = body;
  return rest;
}

/** The once-shown part of `/admin/init`'s answer: the otpauth URL, its key and the QR code's data URL. */
export function enrollmentSecret(detail: unknown): { url: string; key: string; qr: string } | undefined {
  const g = ((detail ?? {}) as { googleurl?: { value?: unknown; img?: unknown } }).googleurl;
  const url = str(g?.value);
  if (!url.startsWith('otpauth://')) return undefined;
  let key = '';
  try {
    key = new URL(url).searchParams.get('secret') ?? '';
  } catch {
    key = '';
  }
  // the QR code is our own PNG; only its data URL is taken, never the HTML around it
  const qr = /src="(data:image\/png;base64,[A-Za-z0-9+/=]+)"/.exec(str(g?.img))?.[1] ?? '';
  return { url, key, qr };
}
