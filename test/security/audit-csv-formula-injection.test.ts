// Invariant: the CSV export of the audit log (`/audit/search?outform=csv`) never hands a
// spreadsheet a formula. Audit cells carry unauthenticated input (the user name sent to
// /validate/check, the client address, …); a cell starting with `=`, `+`, `-`, `@`, a tab or a
// carriage return is prefixed with a single quote (OWASP "CSV Injection"), and every cell stays
// properly quoted so embedded quotes, delimiters and newlines cannot open a new cell or row.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';

/** Splits RFC 4180 CSV (every cell quoted) into rows of cells. */
function parseCsv(body: string, delimiter = ','): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let i = 0;
  while (i < body.length) {
    assert.equal(body[i], '"', `cell at ${i} is not quoted: ${JSON.stringify(body.slice(i, i + 20))}`);
    i++;
    let cell = '';
    for (;;) {
      const q = body.indexOf('"', i);
      assert.ok(q >= 0, 'unterminated quoted cell');
      cell += body.slice(i, q);
      if (body[q + 1] === '"') {
        cell += '"';
        i = q + 2;
        continue;
      }
      i = q + 1;
      break;
    }
    row.push(cell);
    if (body.startsWith(delimiter, i)) i += delimiter.length;
    else {
      assert.equal(body[i], '\n', `garbage after a cell at ${i}`);
      rows.push(row);
      row = [];
      i++;
    }
  }
  return rows;
}

const PAYLOADS = [
  '=HYPERLINK("http://127.0.0.1/x?"&A1,"click")',
  '+SUM(1,2)',
  '-2+3',
  '@SUM(1,2)',
  '\t=cmd|\' /C calc\'!A0',
  '\r=1+1',
  'a"b,c\nd=1',
];

describe('audit CSV export: no formula injection', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
  });
  after(async () => t.close());

  test('user names sent unauthenticated to /validate/check come out quoted and neutralised', async () => {
    // a concurrent burst of unauthenticated requests, as an attacker would send them
    await Promise.all(PAYLOADS.map((user) => t.post('/validate/check', { user, pass: 'x' })));
    for (const delimiter of [',', ';']) {
      const res = await t.admin('/audit/search', { outform: 'csv', delimiter, rp: '1000', action: 'validate/check' });
      assert.equal(res.status, 200);
      const rows = parseCsv(res.body, delimiter);
      assert.ok(rows.length >= PAYLOADS.length);
      for (const row of rows) {
        assert.equal(row.length, 17, 'no cell spilled into a new cell or row');
        for (const cell of row) assert.doesNotMatch(cell, /^[=+\-@\t\r]/, `dangerous cell ${JSON.stringify(cell)}`);
      }
      const users = rows.map((r) => r[8]);
      for (const p of PAYLOADS) {
        const expected = /^[=+\-@\t\r]/.test(p) ? `'${p}` : p;
        assert.ok(users.includes(expected), `user ${JSON.stringify(p)} exported as ${JSON.stringify(expected)}`);
      }
    }
  });

  test('the JSON output is unchanged (the quote is only for spreadsheets)', async () => {
    const res = await t.admin('/audit/search', { rp: '1000', action: 'validate/check' });
    const users = res.json.rows.map((r: any) => r.cell[8]);
    for (const p of PAYLOADS) assert.ok(users.includes(p));
  });
});
