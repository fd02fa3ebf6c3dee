/**
 * The management UI's front door in Chromium: an unauthenticated visit goes to the login
 * page; a wrong password says so and keeps the name; the right one opens the dashboard with
 * the seed scenario's checklist and the warning that no admin policy restricts
 * administrators; a form posted without the session's CSRF token changes nothing; a login
 * form without its own CSRF cookie is refused (login CSRF); logout ends the session; an
 * ended session sends the browser back to the login page with a plain message. Every page
 * runs under the strict CSP with no violation and passes axe-core's WCAG A/AA rules.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { invokeRoute } from '../../src/api/route.ts';
import { Errors, OtpdError } from '../../src/errors.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { haveBinary } from '../helpers/require.ts';
import { assertAccessible, CHROMIUM, launchBrowser, screenshot, watchPage, logInToManage } from './browser.ts';

const skip = haveBinary(CHROMIUM, 'chromium');
let t: TestApp;
let browser: Browser;
let base: string;

before(async () => {
  if (skip) return;
  t = await startTestApp();
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await t?.close();
});

test('login → dashboard → logout, under the strict CSP and accessible', { skip }, async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const watch = watchPage(page);

  const first = await page.goto(`${base}/manage/`);
  assert.equal(new URL(page.url()).pathname, '/manage/login', 'an unauthenticated visit goes to the login page');
  assert.equal(first?.status(), 200);
  const headers = first!.headers();
  assert.match(headers['content-security-policy'] ?? '', /default-src 'none'; script-src 'self'; style-src 'self'/);
  assert.equal(headers['x-frame-options'], 'DENY');
  assert.equal(await page.title(), 'Log in – otpd');
  await assertAccessible(page, 'login page');
  await screenshot(page, 'manage-login');

  await page.fill('#username', 'admin');
  await page.fill('#password', 'not-the-password');
  await page.click('button[type=submit]');
  await page.locator('.error-summary').filter({ hasText: 'Wrong name or password.' }).waitFor();
  assert.equal(await page.inputValue('#username'), 'admin', 'the name typed is kept');
  assert.equal(await page.inputValue('#password'), '', 'the password is never sent back');
  await screenshot(page, 'manage-login-error');

  await page.fill('#password', 'admin-password-1');
  await page.click('button[type=submit]');
  await page.waitForURL(`${base}/manage/`);
  assert.equal(await page.locator('h1').innerText(), 'Dashboard');
  const flash = await page.locator('.flash').innerText();
  assert.match(flash, /^Logged in as admin\. Warning: /, 'no admin policy restricts administrators: the warning is shown');
  const states = await page.locator('.checklist li').evaluateAll((items) => items.map((li) => `${li.querySelector('strong')!.textContent}: ${li.querySelector('.state')!.textContent}`));
  assert.deepEqual(states, ['User store: missing', 'Realm: missing', 'Autoenrollment policy: missing', 'otppin policy: missing', 'SMS or e-mail provider: missing']);
  // each missing item links to the page that sets it
  await page.click('.checklist li.missing a:has-text("Add a user store")');
  await page.waitForURL(`${base}/manage/resolvers`);
  await page.goBack();
  assert.equal(await page.locator('.checklist a.fix[href="/manage/realms"]').count(), 1);
  await assertAccessible(page, 'dashboard');
  await screenshot(page, 'manage-dashboard-empty');

  // a phone-sized screen: the navigation collapses into a menu
  await page.setViewportSize({ width: 390, height: 800 });
  assert.equal(await page.locator('nav.side').isVisible(), false);
  assert.equal(await page.locator('details.menu summary').isVisible(), true);
  await screenshot(page, 'manage-dashboard-phone');
  await page.setViewportSize({ width: 1280, height: 800 });

  await page.click('button:has-text("Log out")');
  await page.waitForURL(/\/manage\/login\?loggedout=1$/);
  assert.equal(await page.locator('.notice').innerText(), 'You are logged out.');
  await page.goto(`${base}/manage/`);
  assert.equal(new URL(page.url()).pathname, '/manage/login', 'after logout the dashboard needs a login again');
  watch.assertClean('login/dashboard/logout');
  await context.close();
});

test('the dashboard reflects the configuration and recent failures', { skip }, async () => {
  await t.admin('/system/setResolver', { name: 'flatfile', type: 'passwdresolver', fileName: '/etc/passwd' });
  await t.admin('/system/setRealm', { realm: 'staff', resolvers: 'flatfile' });
  await t.admin('/system/setDefaultRealm', { realm: 'staff' });
  await t.admin('/system/setPolicy', { name: 'ae', scope: 'enrollment', action: 'autoenrollment=email', realm: '*', active: 'True' });
  await t.post('/validate/check', { user: 'root', pass: 'wrong' });
  const context = await browser.newContext();
  const page = await context.newPage();
  await logInToManage(page, base);
  const states = await page.locator('.checklist li').evaluateAll((items) => items.map((li) => `${li.querySelector('strong')!.textContent}: ${li.querySelector('.state')!.textContent}`));
  assert.deepEqual(states, ['User store: configured', 'Realm: configured', 'Autoenrollment policy: configured', 'otppin policy: missing', 'SMS or e-mail provider: missing']);
  assert.match(await page.locator('.checklist li').nth(1).innerText(), /staff \(default: staff\)/);
  const logins = page.locator('section[aria-labelledby=logins-h] tbody tr');
  assert.equal(await logins.count(), 1);
  assert.match(await logins.first().innerText(), /root\tstaff/);
  await screenshot(page, 'manage-dashboard');
  await context.close();
});

test('forms without the right CSRF token change nothing', { skip }, async () => {
  // a logged-in session, then a cross-site style post of the logout form without the token
  const context = await browser.newContext();
  const page = await context.newPage();
  await logInToManage(page, base);
  const forged = await page.request.post(`${base}/manage/logout`, { form: { csrf_token: 'forged' }, maxRedirects: 0 });
  assert.equal(forged.status(), 403);
  await page.goto(`${base}/manage/`);
  assert.equal(new URL(page.url()).pathname, '/manage/', 'the session survived the forged logout');

  // login CSRF: a login post without the login form's own cookie is refused and logs nobody in
  const fresh = await browser.newContext();
  const res = await fresh.request.post(`${base}/manage/login`, { form: { username: 'admin', password: 'admin-password-1', csrf_token: 'x', next: '/manage/' }, maxRedirects: 0 });
  assert.equal(res.status(), 403);
  assert.equal((await fresh.cookies()).some((c) => c.name === 'access_token_cookie'), false);
  await fresh.close();

  // an ended session: back to the login page, which says why
  const cookie = (await context.cookies()).find((c) => c.name === 'access_token_cookie')!;
  await t.services.admins.endSession(cookie.value);
  await page.goto(`${base}/manage/`);
  assert.equal(new URL(page.url()).pathname, '/manage/login');
  assert.equal(await page.locator('.notice').innerText(), 'Your session has ended. Log in again.');
  await context.close();
});

test('a login never sends the browser to another site', { skip }, async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${base}/manage/login?next=${encodeURIComponent('https://example.org/')}`);
  assert.equal(await page.inputValue('input[name=next]'), '/manage/');
  await page.goto(`${base}/manage/login?next=${encodeURIComponent('//example.org/manage/')}`);
  assert.equal(await page.inputValue('input[name=next]'), '/manage/');
  await context.close();
});

test('an in-process call of an admin route without an authenticated admin, or of a user-session route, is refused before anything runs', { skip }, async () => {
  const rows = Number((await t.services.db.kysely.selectFrom('audit').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst())?.n);
  const cases: [string, { name: string; via: 'session' } | undefined][] = [
    ...['/admin/show', '/system/getConfig', '/audit/search', '/admin/apikey/list'].map((p): [string, undefined] => [p, undefined]),
    // a user-session route is never run in-process, not even for an administrator
    ['/userservice/userinfo', { name: 'admin', via: 'session' }], ['/userservice/usertokenlist', undefined],
  ];
  for (const [path, admin] of cases) {
    await assert.rejects(
      invokeRoute(t.app, t.services, path, { admin, params: {}, request: {} as never, reply: {} as never }),
      (e: unknown) => e instanceof OtpdError && e.code === Errors.notAuthenticated.code,
      path,
    );
  }
  assert.equal(Number((await t.services.db.kysely.selectFrom('audit').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst())?.n), rows, 'no handler ran, nothing audited');
});
