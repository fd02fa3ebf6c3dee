import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CONFIG, FAMILIES } from '../../src/config/catalogue.ts';
import { END, PAGE, START, renderCatalogue, updatedPage } from '../../scripts/docs-config.ts';

test('docs/configuration.md carries the current config catalogue (regenerate: npm run docs:config)', () => {
  const page = readFileSync(PAGE, 'utf8');
  assert.equal(page.split(START).length, 2, 'one config:begin marker');
  assert.equal(page.split(END).length, 2, 'one config:end marker');
  assert.equal(updatedPage(page), page);
  for (const key of [...Object.keys(CONFIG), ...FAMILIES.map((f) => f.key)]) {
    assert.equal(renderCatalogue().split('\n').filter((l) => l.startsWith(`| \`${key}\` |`)).length, 1, key);
  }
});

test('the generated block is replaced whole, the prose around it is kept', () => {
  const page = `intro\n${START}\nstale table\n${END}\noutro\n`;
  const out = updatedPage(page);
  assert.ok(out.startsWith(`intro\n${START}\n`) && out.endsWith(`${END}\noutro\n`));
  assert.ok(!out.includes('stale table'));
  assert.throws(() => updatedPage('no markers'), /markers/);
});
