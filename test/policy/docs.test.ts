import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ACTIONS } from '../../src/policy/catalogue.ts';
import { PAGE, cell, updatedPage } from '../../src/policy/gen-docs.ts';

test('docs/policies.md carries the current action catalogue (regenerate: node --import tsx src/policy/gen-docs.ts)', () => {
  const page = readFileSync(PAGE, 'utf8');
  assert.equal(updatedPage(page), page);
  for (const a of ACTIONS) assert.ok(page.includes(`| \`${a.name}\` |`), a.name);
});

test('docs/policies.md says "no" with the reason for every action otpd refuses, "yes" for the others', () => {
  const page = readFileSync(PAGE, 'utf8');
  for (const a of ACTIONS) {
    const rows = page.split('\n').filter((l) => l.startsWith(`| \`${a.name}\` |`) && l.includes(cell(a.description)));
    assert.equal(rows.length, 1, `${a.scope}/${a.name}`);
    if (a.status === 'unsupported') assert.ok(rows[0].endsWith(`| no (refused): ${cell(a.note!)} |`), rows[0]);
    else assert.match(rows[0], /\| yes(; [^|]*)? \|$/, rows[0]);
  }
});
