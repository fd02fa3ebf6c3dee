// Invariant: every test file is in exactly one tier of scripts/test-tiers.txt, and the unit tier
// stays pure. A test file that is not listed would silently miss `npm run test:unit` (or be
// assumed slow); a listed file that moved would make the unit command fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';

const LIST = 'scripts/test-tiers.txt';
const entries = readFileSync(LIST, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
const onDisk = (readdirSync('test', { recursive: true }) as string[])
  .map((f) => `test/${f.split('\\').join('/')}`)
  .filter((f) => f.endsWith('.test.ts'))
  .sort();

test(`every test file is listed once in ${LIST}, and every listed file exists`, () => {
  const bad = entries.filter((l) => !/^(unit|integration|faults) test\/\S+\.test\.ts$/.test(l));
  assert.deepEqual(bad, [], 'lines must read "unit <path>", "integration <path>" or "faults <path>"');
  const listed = entries.map((l) => l.split(' ')[1]);
  assert.deepEqual(listed.filter((f, i) => listed.indexOf(f) !== i), [], 'listed twice');
  assert.deepEqual(onDisk.filter((f) => !listed.includes(f)), [], `not in ${LIST}: add each as unit, integration or faults`);
  assert.deepEqual(listed.filter((f) => !onDisk.includes(f)), [], `in ${LIST} but not under test/ (moved or deleted?)`);
});

test('faults files live in test/faults/ and only there (npm test skips that folder, npm run test:faults runs it)', () => {
  const misplaced = entries.filter((l) => l.startsWith('faults ') !== l.split(' ')[1].startsWith('test/faults/'));
  assert.deepEqual(misplaced, [], 'tier faults <=> folder test/faults/');
});

test('unit files import no server, database, child process, socket or integration helper', () => {
  const forbidden = /from '(node:(child_process|net|dgram|http|https|tls)|better-sqlite3|pg|mysql2(\/promise)?|kysely|ldapts|playwright-core|smtp-server|smpp|[^']*\/(helpers|fixtures)\/[^']*|[^']*\/harness\.ts|[^']*validation-fixture\.ts|\.\/helpers\.ts)'/;
  const impure = entries
    .filter((l) => l.startsWith('unit '))
    .map((l) => l.slice(5))
    .filter((f) => f !== 'test/tiers.test.ts' && forbidden.test(readFileSync(f, 'utf8')));
  assert.deepEqual(impure, [], 'move these to the integration tier');
});
