/**
 * The token pages stay fast with 10,000 tokens (UI.md: each page under 200 ms server time):
 * 10,000 tokens seeded through the repository, half of them owned by users of a file user
 * store (so every list page looks up 25 owners), then the list (plain, filtered, sorted,
 * a late page, one realm) and a token's page through app.inject with a session. Each figure
 * is the best of 5 calls (a busy shared machine slows single calls, never the best one) and
 * is printed as a test diagnostic.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startTestApp, type TestApp } from '../helpers/app.ts';

const TOKENS = 10_000;
const BUDGET_MS = 200;
let t: TestApp;
let tmp: string;
let cookie = '';

before(async () => {
  t = await startTestApp();
  tmp = mkdtempSync(join(tmpdir(), 'otpd-manage-scale-'));
  const crypt = execFileSync('openssl', ['passwd', '-6', 'pw']).toString().trim();
  writeFileSync(join(tmp, 'users'), Array.from({ length: 200 }, (_, i) => `user${i}:${crypt}:${3000 + i}:100:User ${i},,,,u${i}@example.org:/:/bin/sh`).join('\n'));
  assert.equal((await t.admin('/system/setResolver', { name: 'staff', type: 'passwdresolver', fileName: join(tmp, 'users') })).json.result.value, true);
  assert.equal((await t.admin('/system/setRealm', { realm: 'corp', resolvers: 'useridresolver.PasswdIdResolver.IdResolver.staff' })).json.result.value, true);
  const repo = t.services.tokens.repository;
  const now = Date.now();
  await t.services.db.kysely.transaction().execute(async (trx) => {
    for (let i = 0; i < TOKENS; i++) {
      const owned = i % 2 === 1;
      await repo.insert({
        serial: `OATH${String(i).padStart(6, '0')}`, type: i % 5 === 0 ? 'totp' : 'hmac', description: `token number ${i}`, keyEnc: 'sealed', otplen: 6, hashlib: 'sha1',
        countWindow: 10, syncWindow: 1000, maxFail: 10, pinHash: '', pinSalt: '', userId: owned ? String(3000 + (i % 200)) : '', resolver: owned ? 'staff' : '',
        resolverClass: owned ? 'passwdresolver' : '', info: { hashlib: 'sha1' }, realms: [i % 3 === 0 ? 'lab' : 'corp'], createdAt: now - i * 1000,
      }, trx);
    }
  });
  const login = await t.app.inject({ method: 'POST', url: '/admin/login', payload: 'username=admin&password=admin-password-1', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  const c = Object.fromEntries(login.cookies.map((x) => [x.name, x.value]));
  cookie = `access_token_cookie=${c.access_token_cookie}; csrf_access_token=${c.csrf_access_token}`;
});

after(async () => {
  await t?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function bestOf5(url: string): Promise<{ ms: number; median: number; body: string }> {
  const times: number[] = [];
  let body = '';
  for (let i = 0; i < 5; i++) {
    const started = performance.now();
    const res = await t.app.inject({ url, headers: { cookie } });
    times.push(performance.now() - started);
    assert.equal(res.statusCode, 200, `${url}: ${res.statusCode}`);
    body = res.body;
  }
  times.sort((a, b) => a - b);
  return { ms: times[0]!, median: times[2]!, body };
}

test(`the token pages answer within ${BUDGET_MS} ms with ${TOKENS.toLocaleString('en')} tokens`, async (ctx) => {
  const pages: [string, RegExp][] = [
    ['/manage/tokens', /1–50 of 10,000/],
    ['/manage/tokens?sort=created&dir=desc', /1–50 of 10,000/],
    ['/manage/tokens?sort=user&page=150', /7,451–7,500 of 10,000/],
    ['/manage/tokens?sort=description&dir=desc&page=200', /9,951–10,000 of 10,000/],
    ['/manage/tokens?q=number%2099', /1–50 of 111/],
    ['/manage/tokens?realm=lab&sort=failcount', /1–50 of 3,334/],
    ['/manage/tokens/OATH004711', /<h1>Token OATH004711<\/h1>/],
    ['/manage/tokens/enroll', /<h1>Enroll a token<\/h1>/],
  ];
  const figures: string[] = [];
  for (const [url, expect] of pages) {
    const { ms, median, body } = await bestOf5(url);
    assert.match(body, expect, url);
    figures.push(`${url}: best ${ms.toFixed(1)} ms, median ${median.toFixed(1)} ms`);
    assert.ok(ms < BUDGET_MS, `${url} took ${ms.toFixed(1)} ms (best of 5)`);
  }
  // the owners were looked up: a page of owned tokens names them
  assert.match((await bestOf5('/manage/tokens?sort=user&dir=desc')).body, /user\d+@corp/);
  ctx.diagnostic(figures.join('; '));
});
