/**
 * Renders the error catalogue (src/errors.ts) as a Markdown table and writes it into
 * docs/api.md between the markers:
 *
 *   npm run docs:errors        (node --import tsx scripts/docs-errors.ts)
 *
 * test/architecture/error-catalogue.test.ts fails when the page is out of date.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { catalogue } from '../src/errors.ts';

export const START = '<!-- errors:begin -->';
export const END = '<!-- errors:end -->';

/** Text for one Markdown table cell. */
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The code table, ordered by code. */
export function renderErrorTable(): string {
  const rows = [...catalogue()].sort((a, b) => a.code - b.code);
  return [
    START,
    '<!-- generated from src/errors.ts by scripts/docs-errors.ts (npm run docs:errors); do not edit -->',
    '',
    '| code | HTTP | key | message | when |',
    '|---|---|---|---|---|',
    ...rows.map((e) => `| ${e.code} | ${e.status} | \`${e.key}\` | \`${cell(e.message)}\` | ${cell(e.doc)} |`),
    '',
    END,
  ].join('\n');
}

/** docs/api.md with the table between the markers replaced. */
export function updatedPage(page: string): string {
  const start = page.indexOf(START);
  const end = page.indexOf(END);
  if (start < 0 || end < start) throw new Error(`docs/api.md has no error table markers (${START} … ${END})`);
  return page.slice(0, start) + renderErrorTable() + page.slice(end + END.length);
}

export const PAGE = fileURLToPath(new URL('../docs/api.md', import.meta.url));

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(PAGE, updatedPage(readFileSync(PAGE, 'utf8')));
  process.stdout.write(`updated ${PAGE}\n`);
}
