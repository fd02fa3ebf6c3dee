import type { FastifyReply, FastifyRequest } from 'fastify';
import { invokeRoute } from '../../api/route.ts';
import { Errors, OtpdError } from '../../errors.ts';
import type { ManageKit, View } from './kit.ts';
import { queryText, type SortHeader } from './list-view.ts';
import { orRefusal } from './refusal.ts';
import { pageSession, type PageCall } from './session.ts';
import { asRecord } from './stores.ts';

/**
 * Audit (`/manage/audit`): `/audit/search` with column filters as GET parameters (user, realm,
 * serial, action, success, administrator, client, a time range), sortable columns, paging with
 * counts; the filtered rows as a CSV download (`outform=csv`, all pages, oldest first); and the
 * chain check of `otpd audit verify` (`/audit/verify`) in plain words.
 */

const PAGE_SIZE = 50;
const EXPORT_PAGE = 1000;
/** An export stops here; a narrower filter gets the rest. */
const EXPORT_MAX_ROWS = 200_000;

export const FILTERS = ['user', 'realm', 'serial', 'action', 'success', 'administrator', 'client', 'from', 'to'] as const;
type Filter = (typeof FILTERS)[number];

/** Sortable columns: the page's name → `/audit/search`'s `sortname`. */
const SORTS: Record<string, { label: string; api: string }> = {
  number: { label: 'Number', api: 'number' }, date: { label: 'Time', api: 'date' }, action: { label: 'Action', api: 'action' },
  success: { label: 'Result', api: 'success' }, serial: { label: 'Serial', api: 'serial' }, user: { label: 'User', api: 'user' },
  realm: { label: 'Realm', api: 'realm' }, administrator: { label: 'Administrator', api: 'administrator' }, client: { label: 'Client', api: 'client' },
};

/** The cells of a row as `/audit/search` answers them (LinOTP's order). */
export const CSV_HEADER = ['number', 'date', 'sig_check', 'missing_line', 'action', 'success', 'serial', 'token_type', 'user', 'realm', 'administrator', 'action_detail', 'info', 'linotp_server', 'client', 'log_level', 'clearance_level'];

interface AuditRow {
  id: number; ts: string; action: string; success: boolean; serial: string; tokenType: string; user: string; realm: string;
  administrator: string; detail: string; info: string; server: string; client: string;
}

const href = (path: string, params: Record<string, string>) => {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== '')).toString();
  return q ? `${path}?${q}` : path;
};

function filtersOf(query: unknown): Record<Filter, string> {
  return Object.fromEntries(FILTERS.map((f) => [f, queryText(query, f).trim()])) as Record<Filter, string>;
}

/** The search parameters of the filters (success as the API's 1/0). */
function searchParams(filters: Record<Filter, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of FILTERS) if (filters[f] !== '' && (f !== 'success' || ['1', '0'].includes(filters[f]))) out[f] = filters[f];
  return out;
}

const rowOf = (cell: unknown[]): AuditRow => ({
  id: Number(cell[0]), ts: String(cell[1]), action: String(cell[4]), success: String(cell[5]) === '1', serial: String(cell[6] ?? ''),
  tokenType: String(cell[7] ?? ''), user: String(cell[8] ?? ''), realm: String(cell[9] ?? ''), administrator: String(cell[10] ?? ''),
  detail: String(cell[11] ?? ''), info: String(cell[12] ?? ''), server: String(cell[13] ?? ''), client: String(cell[14] ?? ''),
});

async function searchView(call: PageCall, query: unknown): Promise<View> {
  const filters = filtersOf(query);
  const sort = Object.hasOwn(SORTS, queryText(query, 'sort')) ? queryText(query, 'sort') : 'number';
  const asc = queryText(query, 'dir') === 'asc';
  const requested = Math.max(1, Number.parseInt(queryText(query, 'page'), 10) || 1);
  const keep = { ...filters, sort: sort === 'number' ? '' : sort, dir: asc ? 'asc' : '' };
  let problem: { field?: Filter; text: string } | undefined;
  let rows: AuditRow[] = [];
  let total = 0;
  let page = requested;
  try {
    const result = asRecord(await call.api('/audit/search', { ...searchParams(filters), rp: String(PAGE_SIZE), page: String(requested), sortname: SORTS[sort]!.api, sortorder: asc ? 'asc' : 'desc' }));
    total = Number(result.total ?? 0);
    const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
    if (requested > pages && total > 0) {
      page = pages;
      const last = asRecord(await call.api('/audit/search', { ...searchParams(filters), rp: String(PAGE_SIZE), page: String(pages), sortname: SORTS[sort]!.api, sortorder: asc ? 'asc' : 'desc' }));
      rows = ((last.rows as { cell: unknown[] }[]) ?? []).map((r) => rowOf(r.cell));
    } else rows = ((result.rows as { cell: unknown[] }[]) ?? []).map((r) => rowOf(r.cell));
  } catch (e) {
    if (!(e instanceof OtpdError) || e.code !== Errors.invalidParameter.code) throw e;
    const m = /^Invalid parameter '(\w+)': (.*)$/s.exec(e.message);
    const field = m && (FILTERS as readonly string[]).includes(m[1]!) ? (m[1] as Filter) : undefined;
    const text = field ? m![2]! : e.message;
    problem = { field, text: `${text[0]!.toUpperCase()}${text.slice(1)}.` };
  }
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  const from = total === 0 ? 0 : (page - 1) * PAGE_SIZE + 1;
  const fmt = (n: number) => n.toLocaleString('en');
  const headers: Record<string, SortHeader> = {};
  for (const [name, s] of Object.entries(SORTS)) {
    const current = name === sort;
    // the number (newest first) is the default; a second click on the current column turns it round
    const nextAsc = current ? !asc : false;
    headers[name] = { label: s.label, href: href('/manage/audit', { ...filters, sort: name === 'number' ? '' : name, dir: nextAsc ? 'asc' : '' }), ...(current ? { sort: asc ? 'ascending' as const : 'descending' as const } : {}) };
  }
  const filtered = Object.keys(searchParams(filters)).length > 0;
  return {
    template: 'manage/audit',
    data: {
      title: 'Audit', filters, rows, problem, filtered, headers,
      list: {
        total, page, pages, counts: total === 0 ? '0' : `${fmt(from)}–${fmt(from + rows.length - 1)} of ${fmt(total)}`,
        ...(page > 1 ? { prev: href('/manage/audit', { ...keep, page: page - 1 === 1 ? '' : String(page - 1) }) } : {}),
        ...(page < pages ? { next: href('/manage/audit', { ...keep, page: String(page + 1) }) } : {}),
      },
      exportHref: href('/manage/audit/export', searchParams(filters)),
    },
  };
}

/** The filtered rows as CSV, oldest first, with LinOTP's column names as the first line. */
async function exportCsv(kit: ManageKit, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const session = await pageSession(kit.services, request);
  if (!session) return reply.redirect(`/manage/login?next=${encodeURIComponent('/manage/audit')}`, 303);
  const api = async (params: Record<string, string>) => {
    const r = await invokeRoute(kit.app, kit.services, '/audit/search', { admin: session.admin, params, request, reply });
    return r.kind === 'json' ? r.value : r.body;
  };
  const filters = searchParams(filtersOf(request.query));
  try {
    // the count first: rows written while exporting (the export's own audit rows among them) are left out
    const total = Math.min(EXPORT_MAX_ROWS, Number(asRecord(await api({ ...filters, rp: '1' })).total ?? 0));
    const parts = [`${CSV_HEADER.map((h) => `"${h}"`).join(',')}\n`];
    let rows = 0;
    for (let page = 1; rows < total; page++) {
      const lines = String(await api({ ...filters, outform: 'csv', rp: String(EXPORT_PAGE), page: String(page), sortname: 'number', sortorder: 'asc' })).split('\n').filter(Boolean);
      if (lines.length === 0) break;
      const take = lines.slice(0, total - rows);
      parts.push(`${take.join('\n')}\n`);
      rows += take.length;
    }
    const stamp = new Date(kit.services.clock.now()).toISOString().replace(/[-:]/g, '').slice(0, 15);
    return reply
      .header('Content-Disposition', `attachment; filename="otpd-audit-${stamp}.csv"`)
      .header('Cache-Control', 'no-store')
      .header('X-Content-Type-Options', 'nosniff')
      .type('text/csv; charset=utf-8')
      .send(parts.join(''));
  } catch (e) {
    if (!(e instanceof OtpdError)) throw e;
    return reply.redirect(href('/manage/audit', { ...filters }), 303);
  }
}

interface VerifyResult { ok: boolean; rows: number; legacyRows: number; problems: string[]; firstBroken?: { id: number | null; seq: number | null; reason: string }; notes: string[] }

const SHOWN_PROBLEMS = 20;

async function verifyView(call: PageCall): Promise<View> {
  const result = (await call.api('/audit/verify')) as VerifyResult;
  const first = result.firstBroken;
  const where = !first ? '' : first.id !== null
    ? `row ${first.id.toLocaleString('en')}${first.seq !== null ? ` (sequence ${first.seq.toLocaleString('en')})` : ''}`
    : first.seq !== null ? `sequence ${first.seq.toLocaleString('en')}, a row that is gone` : 'the audit head';
  return {
    template: 'manage/audit-verify',
    data: {
      title: 'Audit chain check', result, where, rows: result.rows.toLocaleString('en'),
      shown: result.problems.slice(0, SHOWN_PROBLEMS), more: Math.max(0, result.problems.length - SHOWN_PROBLEMS),
    },
  };
}

export function registerAudit(kit: ManageKit): void {
  const { app } = kit;
  app.get('/manage/audit', kit.page(orRefusal(async (call, request) => searchView(call, request.query))));
  app.get('/manage/audit/export', (request, reply) => exportCsv(kit, request, reply));
  app.get('/manage/audit/verify', kit.page(orRefusal(async (call) => verifyView(call))));
}
