/**
 * The seed's scenario end to end in a real browser: an LDAP user logs in on
 * /auth/index with the directory password, is told that an OTP was sent to the
 * masked address (the token was autoenrolled), the OTP arrives at the SMTP server, and the login
 * with password+OTP succeeds. The page runs under its strict CSP (no inline
 * script), which the test checks by watching for CSP violations.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { haveBinary } from '../helpers/require.ts';
import { startOobEnv, type OobApp, type OobEnv } from '../oob/harness.ts';

const CHROMIUM = '/usr/bin/chromium';
const skip = haveBinary('/usr/sbin/slapd', 'slapd') || haveBinary(CHROMIUM, 'chromium');

let env: OobEnv;
let app: OobApp;
let browser: Browser;
let base: string;

before(async () => {
  if (skip) return;
  env = await startOobEnv();
  app = await env.app();
  await app.policy('ae', 'enrollment', 'autoenrollment=email sms');
  await app.t.app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.t.app.server.address() as AddressInfo).port}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
});

after(async () => {
  await browser?.close();
  await app?.close();
  await env?.close();
});

test('autoenrollment on /auth/index: password → OTP by e-mail → password+OTP → success', { skip }, async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`);
  });

  const response = await page.goto(`${base}/auth/index`);
  assert.equal(response?.status(), 200);
  assert.match(response!.headers()['content-security-policy'] ?? '', /script-src 'self'/);
  assert.equal(await page.title(), 'otpd – login test');

  const result = page.locator('#result');
  await page.fill('#user', 'alice');
  await page.fill('#pass', 'wrong-password');
  await page.click('#submit');
  await result.filter({ hasText: 'Wrong password or code.' }).waitFor({ timeout: 10_000 });
  assert.equal(app.mails().length, 0, 'nothing sent for a wrong password');

  await page.fill('#pass', 'alicepw');
  await page.click('#submit');
  await result.filter({ hasText: 'A code was sent to a***@example.org.' }).waitFor({ timeout: 10_000 });
  assert.doesNotMatch(await result.innerText(), /\d{6,}/, 'no transaction id on the page');
  assert.equal(await page.inputValue('#pass'), '', 'the password field is cleared');

  const code = await app.mailCode();
  assert.deepEqual(app.mails()[0]!.to, ['alice@example.org']);
  await page.fill('#pass', `alicepw${code}`);
  await page.click('#submit');
  await result.filter({ hasText: 'You are logged in' }).waitFor({ timeout: 10_000 });

  // the same password+OTP again is a replay
  await page.fill('#pass', `alicepw${code}`);
  await page.click('#submit');
  await result.filter({ hasText: 'Wrong password or code.' }).waitFor({ timeout: 10_000 });

  const [token] = await app.tokensOf('alice');
  assert.equal(token?.type, 'email');
  assert.equal(token.description, 'auto enrolled for alice@myrealm');
  assert.deepEqual(problems, [], 'no script errors or CSP violations');
  await context.close();
});
