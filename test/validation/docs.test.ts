// docs/api.md lists every validation reason code with its meaning, generated from
// src/validation/reasons.ts, so the documented codes are the ones written to the audit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { PAGE, updatedPage } from '../../src/validation/gen-docs.ts';
import { REASONS } from '../../src/validation/reasons.ts';

test('docs/api.md carries the current reason codes (regenerate: node --import tsx src/validation/gen-docs.ts)', () => {
  const page = readFileSync(PAGE, 'utf8');
  assert.equal(updatedPage(page), page);
  for (const code of Object.keys(REASONS)) assert.equal(page.split('\n').filter((l) => l.startsWith(`| \`${code}\` |`)).length, 1, code);
});
