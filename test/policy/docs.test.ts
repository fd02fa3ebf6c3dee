import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ACTIONS } from '../../src/policy/catalogue.ts';
import { PAGE, updatedPage } from '../../src/policy/gen-docs.ts';

test('docs/policies.md carries the current action catalogue (regenerate: node --import tsx src/policy/gen-docs.ts)', () => {
  const page = readFileSync(PAGE, 'utf8');
  assert.equal(updatedPage(page), page);
  for (const a of ACTIONS) assert.ok(page.includes(`| \`${a.name}\` |`), a.name);
});
