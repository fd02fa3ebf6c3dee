/**
 * The web pages' templates and assets keep to the strict CSP and stay well-formed: no inline
 * script or style anywhere in a template (the CSP would block it and the page would break
 * silently), every script is loaded from otpd itself, and every stylesheet's braces balance
 * (an unclosed `@media` block swallows every rule after it, which a merge once did).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const WEB = fileURLToPath(new URL('../../web/', import.meta.url));
const files = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]));
const all = files(WEB);

test('templates have no inline script, no inline style, no event-handler attribute, no foreign script', () => {
  const templates = all.filter((f) => f.endsWith('.eta'));
  assert.ok(templates.length >= 5);
  for (const f of templates) {
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/<script\b([^>]*)>/g)) {
      assert.match(m[1]!, /\bsrc="\/[a-z]/, `${f}: a <script> without a src on this server`);
    }
    assert.doesNotMatch(text, /<style\b/, `${f}: a <style> element`);
    assert.doesNotMatch(text, /\sstyle\s*=/, `${f}: a style attribute`);
    assert.doesNotMatch(text, /\son[a-z]+\s*=/, `${f}: an inline event handler`);
  }
});

test('stylesheets are balanced', () => {
  const sheets = all.filter((f) => f.endsWith('.css'));
  assert.ok(sheets.length >= 1);
  for (const f of sheets) {
    const text = readFileSync(f, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
    let depth = 0;
    text.split('\n').forEach((line, i) => {
      for (const c of line) {
        if (c === '{') depth++;
        if (c === '}') depth--;
        assert.ok(depth >= 0, `${f}:${i + 1}: a '}' closes nothing`);
      }
      // otpd's sheets nest at most one level (@media); deeper means a block was left open
      assert.ok(depth <= 2, `${f}:${i + 1}: nested ${depth} deep (an unclosed block above?)`);
      if (/^\s*@media/.test(line)) assert.equal(depth, 1, `${f}:${i + 1}: @media inside another block`);
    });
    assert.equal(depth, 0, `${f}: ${depth} block(s) left open`);
  }
});
