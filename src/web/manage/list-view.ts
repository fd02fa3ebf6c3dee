/**
 * Sorting and paging of a list the page already holds (resolvers, realms, the users one
 * `/admin/userlist` call returned), driven by GET parameters so a sorted, paged list can be
 * bookmarked: `sort`, `dir` (asc|desc), `page`. Links keep every other parameter (the filter).
 */

/** One sortable column header: its link and, for the current one, its direction. */
export interface SortHeader { label: string; href: string; sort?: 'ascending' | 'descending' }

export interface ListPage<T> {
  rows: T[];
  total: number;
  /** 1-based position of the first and last row shown (0 when empty). */
  from: number;
  to: number;
  page: number;
  pages: number;
  prev?: string;
  next?: string;
  headers: Record<string, SortHeader>;
  /** "1–50 of 1,234" */
  counts: string;
}

const PAGE_SIZE = 50;

/** Text of a GET parameter (the last one when repeated). */
export function queryText(query: unknown, name: string): string {
  const v = (query as Record<string, unknown> | undefined)?.[name];
  const last = Array.isArray(v) ? v[v.length - 1] : v;
  return typeof last === 'string' ? last : '';
}

function href(path: string, params: Record<string, string>): string {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== ''));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

/**
 * Sorts by the requested column (one of `columns`, else the first), pages by 50.
 * `keep` are the filter parameters the links carry on.
 */
export function listPage<T>(
  rows: T[], query: unknown, path: string, keep: Record<string, string>,
  columns: Record<string, { label: string; value: (row: T) => string | number }>,
): ListPage<T> {
  const names = Object.keys(columns);
  const sort = names.includes(queryText(query, 'sort')) ? queryText(query, 'sort') : names[0]!;
  const desc = queryText(query, 'dir') === 'desc';
  const value = columns[sort]!.value;
  const sorted = [...rows].sort((a, b) => {
    const x = value(a);
    const y = value(b);
    const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y), 'en', { sensitivity: 'base', numeric: true });
    return desc ? -c : c;
  });
  const total = sorted.length;
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  const page = Math.min(pages, Math.max(1, Number.parseInt(queryText(query, 'page'), 10) || 1));
  const start = (page - 1) * PAGE_SIZE;
  const shown = sorted.slice(start, start + PAGE_SIZE);
  const base = { ...keep, sort: sort === names[0] ? '' : sort, dir: desc ? 'desc' : '' };
  const headers: Record<string, SortHeader> = {};
  for (const name of names) {
    const current = name === sort;
    headers[name] = {
      label: columns[name]!.label,
      href: href(path, { ...keep, sort: name === names[0] ? '' : name, dir: current && !desc ? 'desc' : '' }),
      ...(current ? { sort: desc ? 'descending' as const : 'ascending' as const } : {}),
    };
  }
  const from = total === 0 ? 0 : start + 1;
  const to = start + shown.length;
  const fmt = (n: number) => n.toLocaleString('en');
  return {
    rows: shown, total, from, to, page, pages, headers,
    counts: total === 0 ? '0' : `${fmt(from)}–${fmt(to)} of ${fmt(total)}`,
    ...(page > 1 ? { prev: href(path, { ...base, page: page - 1 === 1 ? '' : String(page - 1) }) } : {}),
    ...(page < pages ? { next: href(path, { ...base, page: String(page + 1) }) } : {}),
  };
}
