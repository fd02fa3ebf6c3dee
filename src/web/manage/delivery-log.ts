import { Errors, OtpdError } from '../../errors.ts';
import type { ManageKit } from './kit.ts';
import { queryText } from './list-view.ts';
import { orRefusal } from './refusal.ts';

/**
 * The delivery log (`/manage/delivery`): every SMS and e-mail otpd sent or tried, read from
 * `/system/deliveryLog` with its filters as GET parameters (status, channel, user, realm, serial,
 * from/until), paged by the API (50 a page, "1–50 of 1,234"), newest or oldest first; each row
 * with its provider, the provider's message id, the error and every attempt. Destinations are
 * masked by the API; a code is never in the log.
 */

export const STATUSES = ['queued', 'sending', 'retry', 'accepted', 'delivered', 'failed', 'expired', 'refused'] as const;
/** The colour class of a status word (a word always stands beside the colour). */
export const STATUS_TONE: Record<string, 'ok' | 'bad' | 'warn'> = {
  accepted: 'ok', delivered: 'ok', failed: 'bad', expired: 'bad', refused: 'bad', queued: 'warn', sending: 'warn', retry: 'warn',
};
const PAGE_SIZE = 50;
const FILTERS = ['status', 'channel', 'user', 'realm', 'serial', 'since', 'until'] as const;
type Filters = Record<(typeof FILTERS)[number], string>;

interface Entry {
  id: number; channel: string; to: string; status: string; provider: string; providerMessageId: string; error: string;
  user: string; realm: string; serial: string; createdAt: number; finishedAt: number | null;
  attempts: { no: number; provider: string; status: string; providerMessageId: string; error: string; startedAt: number }[];
}

/** "2026-01-31", "2026-01-31 08:00" or "2026-01-31T08:00:00" are UTC; anything else goes to the API as typed (epoch ms, ISO with a zone). */
export function utcTime(text: string): string {
  const t = text.trim();
  if (/^\d{4}-\d\d-\d\d$/.test(t)) return `${t}T00:00:00Z`;
  if (/^\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d)?$/.test(t)) return `${t.replace(' ', 'T')}Z`;
  return t;
}

function href(params: Record<string, string>): string {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== '')).toString();
  return q ? `/manage/delivery?${q}` : '/manage/delivery';
}

export function registerDeliveryLog(kit: ManageKit): void {
  kit.app.get('/manage/delivery', kit.page(orRefusal(async (call, request) => {
    const filters = Object.fromEntries(FILTERS.map((f) => [f, queryText(request.query, f).trim()])) as Filters;
    const asc = queryText(request.query, 'order') === 'asc';
    const page = Math.max(1, Number.parseInt(queryText(request.query, 'page'), 10) || 1);
    const fieldErrors: Record<string, string> = {};
    let log: { total: number; entries: Entry[] } = { total: 0, entries: [] };
    try {
      log = await call.api('/system/deliveryLog', {
        ...(filters.status ? { status: filters.status } : {}), ...(filters.channel ? { type: filters.channel } : {}),
        ...(filters.user ? { user: filters.user } : {}), ...(filters.realm ? { realm: filters.realm } : {}), ...(filters.serial ? { serial: filters.serial } : {}),
        ...(filters.since ? { since: utcTime(filters.since) } : {}), ...(filters.until ? { until: utcTime(filters.until) } : {}),
        page: String(page), pagesize: String(PAGE_SIZE), ...(asc ? { sortorder: 'asc' } : {}),
      }) as typeof log;
    } catch (e) {
      // a filter the API refuses (a time it cannot read) is said next to that filter
      if (!(e instanceof OtpdError) || e.code !== Errors.invalidParameter.code) throw e;
      const name = /'([^']+)'/.exec(e.message)?.[1] ?? '';
      const field = name === 'type' ? 'channel' : name;
      fieldErrors[(FILTERS as readonly string[]).includes(field) ? field : 'status'] = field === 'since' || field === 'until'
        ? 'Write a date such as 2026-01-31 or 2026-01-31 08:00 (UTC).'
        : e.message;
    }
    const pages = Math.max(1, Math.ceil(log.total / PAGE_SIZE));
    const keep = { ...filters, order: asc ? 'asc' : '' };
    const from = log.entries.length ? (page - 1) * PAGE_SIZE + 1 : 0;
    const fmt = (n: number) => n.toLocaleString('en');
    const filtered = FILTERS.some((f) => filters[f] !== '');
    return {
      template: 'manage/delivery-log',
      data: {
        title: 'Delivery log', filters, fieldErrors, statuses: STATUSES, tone: STATUS_TONE, entries: log.entries, total: log.total, filtered,
        counts: log.entries.length ? `${fmt(from)}–${fmt(from + log.entries.length - 1)} of ${fmt(log.total)}` : `0 of ${fmt(log.total)}`,
        page, pages, asc,
        sortHref: href({ ...filters, order: asc ? '' : 'asc' }),
        ...(page > 1 ? { prev: href({ ...keep, page: page - 1 === 1 ? '' : String(page - 1) }) } : {}),
        ...(page < pages ? { next: href({ ...keep, page: String(page + 1) }) } : {}),
      },
    };
  })));
}
