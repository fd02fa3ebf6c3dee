import { auditChainKey } from '../audit/writer.ts';
import { verifyAuditChain } from '../audit/verify.ts';
import type { Selectable } from 'kysely';
import { Errors } from '../errors.ts';
import type { AuditTable } from '../store/schema.ts';
import type { Params } from './params.ts';
import { defineRoutes, ok, raw, text, type Api } from './route.ts';
import { ownEntry } from '../util/json.ts';

/** Search filters: LinOTP's columns, and otpd's `request_id` (the `reqId` of a log line). */
const COLUMNS = ['serial', 'user', 'realm', 'action', 'action_detail', 'success', 'tokentype', 'administrator', 'info', 'linotp_server', 'client', 'log_level', 'date', 'number', 'request_id'] as const;
const DB_COLUMN: Record<string, 'serial' | 'user' | 'realm' | 'action' | 'action_detail' | 'success' | 'token_type' | 'administrator' | 'info' | 'server' | 'client' | 'log_level' | 'ts' | 'id' | 'request_id'> = {
  serial: 'serial', user: 'user', realm: 'realm', action: 'action', action_detail: 'action_detail', success: 'success',
  tokentype: 'token_type', administrator: 'administrator', info: 'info', linotp_server: 'server', client: 'client',
  log_level: 'log_level', date: 'ts', number: 'id', request_id: 'request_id',
};

/**
 * Characters that make a spreadsheet read a cell as a formula (OWASP "CSV Injection"), plus
 * their full-width forms, which some spreadsheets normalise.
 */
const FORMULA_START = /^[=+\-@\t\r\uFF1D\uFF0B\uFF0D\uFF20]/;

/**
 * One CSV cell: always quoted (embedded quotes doubled), and prefixed with a single quote when
 * it would start a formula. Audit cells carry unauthenticated input (user names, client
 * addresses), so the export must not run it in the spreadsheet of the admin who opens it.
 */
export function csvCell(v: unknown): string {
  let s = String(v);
  if (FORMULA_START.test(s)) s = `'${s}`;
  return `"${s.replaceAll('"', '""')}"`;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * The time range of a search (otpd's own `from`/`to`): a date (`2025-03-01`, UTC; `to` then
 * takes in that whole day) or a date and time with zone. As stored ISO texts, compared as such.
 */
function timeRange(p: Params): { from?: string; before?: string; until?: string } {
  const at = (name: string, v: string, endOfDay: boolean): string => {
    const day = DATE.test(v) ? Date.parse(`${v}T00:00:00Z`) : Number.NaN;
    // a date that does not exist (2026-02-30) is refused, not rolled over into the next month
    const ms = DATE.test(v) ? (Number.isFinite(day) && new Date(day).toISOString().startsWith(v) ? day + (endOfDay ? 86_400_000 : 0) : Number.NaN)
      : DATE_TIME.test(v) ? Date.parse(v) : Number.NaN;
    if (!Number.isFinite(ms)) throw Errors.invalidParameter({ name, why: 'use a date (2025-03-01) or a date and time with zone (2025-03-01T12:00:00Z)' });
    return new Date(ms).toISOString();
  };
  const from = p.get('from')?.trim();
  const to = p.get('to')?.trim();
  return {
    ...(from ? { from: at('from', from, false) } : {}),
    ...(to ? (DATE.test(to) ? { before: at('to', to, true) } : { until: at('to', to, false) }) : {}),
  };
}

/** One audit row as the cells of a flexigrid row (`/audit/search`, `/userservice/history`), in LinOTP's column order. */
export function auditCells(r: Selectable<AuditTable>): unknown[] {
  return [
    Number(r.id), r.ts, 'OK', '', r.action, r.success, r.serial, r.token_type, r.user, r.realm, r.administrator,
    r.action_detail, r.info, r.server, r.client, r.log_level, Number(r.clearance_level),
  ];
}

/** `/audit/search`: flexigrid output outside the envelope (spec 1.8); `/audit/verify`: the chain check of `otpd audit verify`. */
export function register(api: Api): void {
  defineRoutes(api, [
    {
      path: '/audit/search',
      policy: { scope: 'audit', action: 'view' },
      handler: async (ctx) => {
        const p = ctx.params;
        const filters: [string, string][] = [];
        for (const c of COLUMNS) if (p.get(c)) filters.push([DB_COLUMN[c], p.get(c)!]);
        if (p.get('qtype') && p.get('query')) {
          if (p.get('qtype') === 'extsearch') {
            for (const part of p.get('query')!.split(';')) {
              const [k, v] = part.split('=');
              const col = k ? ownEntry(DB_COLUMN, k.trim()) : undefined;
              if (col && v !== undefined) filters.push([col, v.trim()]);
            }
          } else {
            const col = ownEntry(DB_COLUMN, p.get('qtype')!);
            if (col) filters.push([col, p.get('query')!]);
          }
        }
        const useOr = p.bool('or');
        const like = (v: string) => (v.includes('*') ? v.replace(/[\\%_]/g, (c) => `\\${c}`).replaceAll('*', '%') : v);
        const range = timeRange(p);
        let q = ctx.services.db.kysely.selectFrom('audit');
        if (range.from) q = q.where('ts', '>=', range.from);
        if (range.before) q = q.where('ts', '<', range.before);
        if (range.until) q = q.where('ts', '<=', range.until);
        if (filters.length) {
          q = q.where((eb) => {
            const conds = filters.map(([col, v]) => (v.includes('*') ? eb(col as 'serial', 'like', like(v)) : eb(col as 'serial', '=', v)));
            return useOr ? eb.or(conds) : eb.and(conds);
          });
        }
        const total = Number((await q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst())?.n ?? 0);
        const rp = p.int('rp', 15, 1, 1000);
        const page = p.int('page', 1, 1, 1_000_000);
        const sortCol = ownEntry(DB_COLUMN, p.get('sortname') ?? 'number') ?? 'id';
        const rows = await q.selectAll().orderBy(sortCol, p.get('sortorder') === 'asc' ? 'asc' : 'desc').limit(rp).offset((page - 1) * rp).execute();
        const cells = rows.map(auditCells);
        if (p.get('outform') === 'csv') {
          const d = p.get('delimiter') ?? ',';
          return text(cells.map((c) => c.map(csvCell).join(d)).join('\n') + '\n', 'text/csv; charset=utf-8');
        }
        return raw({ page, rows: cells.map((cell) => ({ id: cell[0], cell })), total });
      },
    },
    {
      path: '/audit/verify',
      policy: { scope: 'audit', action: 'view' },
      handler: async (ctx) => {
        const { settings, db, keyring } = ctx.services;
        const result = await verifyAuditChain(db, auditChainKey(keyring, settings.dataDir));
        ctx.audit.actionDetail = result.ok ? `chain intact: ${result.rows} rows` : `chain BROKEN: ${result.problems[0]}`;
        return ok(result);
      },
    },
  ]);
}
