/**
 * Invariant: the error catalogue (src/errors.ts) is the one list of error answers. Every entry
 * is thrown somewhere in src/ (no dead codes), codes are unique, every message template is
 * filled by its factory, the code table in docs/api.md is the catalogue's (regenerate with
 * `npm run docs:errors`), and code outside the areas still being converted throws only
 * `Errors.<key>(…)`, never the deprecated `ErrorCodes` / `badParameter` / `new OtpdError`.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Errors, OtpdError, catalogue } from '../../src/errors.ts';
import { END, PAGE, START, renderErrorTable, updatedPage } from '../../scripts/docs-errors.ts';

const SRC = join(resolve(dirname(fileURLToPath(import.meta.url)), '../..'), 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return /\.(ts|mts)$/.test(e.name) && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** src-relative path → code without comments, for every source file but the catalogue itself. */
const sources = new Map(
  sourceFiles(SRC)
    .filter((f) => relative(SRC, f) !== 'errors.ts')
    .map((f) => [relative(SRC, f), readFileSync(f, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1')]),
);

test('docs/api.md carries the catalogue\'s code table (regenerate: npm run docs:errors)', () => {
  const page = readFileSync(PAGE, 'utf8');
  assert.equal(page.split(START).length, 2, 'one begin marker');
  assert.equal(page.split(END).length, 2, 'one end marker');
  assert.equal(updatedPage(page), page);
  for (const e of catalogue()) assert.ok(renderErrorTable().includes(`| ${e.code} | ${e.status} | \`${e.key}\` |`), e.key);
});

test('every catalogue entry is thrown somewhere in src/', () => {
  const unused = catalogue()
    .map((e) => e.key)
    .filter((key) => ![...sources.values()].some((code) => new RegExp(`\\bErrors\\.${key}\\b`).test(code)));
  assert.deepEqual(unused, [], `entries no code uses (delete them): ${unused.join(', ')}`);
});

test('codes are unique and every factory fills its template, with its status and key as the reason', () => {
  const entries = catalogue();
  assert.equal(new Set(entries.map((e) => e.code)).size, entries.length);
  for (const e of entries) {
    const names = [...e.message.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
    const params = Object.fromEntries(names.map((n) => [n, `<${n}>`]));
    const err = (Errors as unknown as Record<string, (p?: Record<string, string>) => OtpdError>)[e.key](params);
    assert.ok(err instanceof OtpdError, e.key);
    assert.equal(err.code, e.code, e.key);
    assert.equal(err.httpStatus, e.status, e.key);
    assert.equal(err.reason, e.key);
    assert.doesNotMatch(err.message, /\{\w+\}/, `${e.key}: unfilled placeholder in ${err.message}`);
    for (const n of names) assert.ok(err.message.includes(`<${n}>`), `${e.key}: {${n}}`);
  }
});

/** Areas whose throw sites are converted by their own change (issue 11); everything else uses the catalogue. */
const NOT_YET_CONVERTED = ['users/'];

test('outside the areas still being converted, errors come from the catalogue only', () => {
  const deprecated = /\bErrorCodes\b|\bbadParameter\b|\bnew OtpdError\(|(?<![.\w])missingParameter\(/;
  const offenders = [...sources]
    .filter(([path]) => !NOT_YET_CONVERTED.some((area) => path.startsWith(area)))
    .filter(([, code]) => deprecated.test(code))
    .map(([path]) => path);
  assert.deepEqual(offenders, []);
});
