/**
 * The seed scenario configured through the management UI only, in Chromium: an administrator
 * logs in, adds an LDAP user store (a real slapd) with the OpenLDAP preset and tests it, makes
 * a realm of it the default, picks the autoenrollment (e-mail) and otppin=1 policies from the
 * action catalogue, adds an SMTP e-mail provider (a real SMTP server) — and the dashboard then
 * says everything is configured. A directory user's first login on /auth/index is answered
 * "OTP sent", the code arrives at the SMTP server, password+code logs in; the delivery log page
 * shows that message, and the policy simulator explains why the user is challenged with the
 * directory password. No call of the JSON API sets anything up: the test only reads through it.
 * The screenshots it writes are the ones docs/manage.md shows.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { FIXTURE_ADMIN_DN, FIXTURE_ADMIN_PW, FIXTURE_BASE, startSlapd, type Slapd } from '../fixtures/slapd.ts';
import { SmtpSink } from '../fixtures/smtp-sink.ts';
import { codeIn, mailBody } from '../oob/harness.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { haveBinary } from '../helpers/require.ts';
import { waitFor } from '../helpers/wait.ts';
import { assertAccessible, CHROMIUM, launchBrowser, screenshot, watchPage } from './browser.ts';

const skip = haveBinary('/usr/sbin/slapd', 'slapd') || haveBinary(CHROMIUM, 'chromium');
let t: TestApp;
let ldap: Slapd;
let smtp: SmtpSink;
let browser: Browser;
let base: string;
let page: Page;

before(async () => {
  if (skip) return;
  ldap = await startSlapd();
  smtp = await new SmtpSink().start();
  t = await startTestApp();
  // the dispatcher sends the outbox (serve starts it; the test app does not by itself)
  t.services.delivery.start();
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  browser = await launchBrowser();
  page = await (await browser.newContext({ viewport: { width: 1280, height: 860 } })).newPage();
});

after(async () => {
  await browser?.close();
  await t?.services.delivery.stop();
  await t?.close();
  await smtp?.stop();
  await ldap?.dispose();
});

const flash = () => page.locator('.flash').innerText();
const states = () => page.locator('.checklist li').evaluateAll((items) => items.map((li) => li.querySelector('.state')!.textContent));

test('the seed scenario, configured in the browser only', { skip }, async () => {
  const watch = watchPage(page);
  await page.goto(`${base}/manage/`);
  await page.fill('#username', 'admin');
  await page.fill('#password', 'admin-password-1');
  await page.click('button[type=submit]');
  await page.waitForURL(`${base}/manage/`);
  assert.deepEqual(await states(), ['missing', 'missing', 'missing', 'missing', 'missing']);

  // 1. the LDAP user store, with the OpenLDAP preset, tested before it is saved
  await page.click('a.fix:has-text("Add a user store")');
  await page.click('a:has-text("OpenLDAP")');
  await page.waitForURL(`${base}/manage/resolvers/new/ldapresolver`);
  await page.fill('#f-name', 'corpldap');
  await page.fill('#f-LDAPURI', ldap.url);
  await page.fill('#f-LDAPBASE', FIXTURE_BASE);
  await page.fill('#f-BINDDN', FIXTURE_ADMIN_DN);
  await page.fill('#f-BINDPW', FIXTURE_ADMIN_PW);
  // the fixture directory speaks plain LDAP on loopback (no StartTLS)
  await page.setChecked('#f-EnforceTLS', false);
  await page.fill('#f-TIMEOUT', '2');
  await page.click('button:has-text("Test connection")');
  await page.locator('#test-result').waitFor();
  assert.equal(await page.locator('#test-result .state').innerText(), 'Connection works');
  await screenshot(page, 'seed-1-user-store');
  await page.click('button.primary:has-text("Save")');
  await page.waitForURL(`${base}/manage/resolvers`);
  assert.equal(await flash(), "User store corpldap created. Next: put it in a realm.");

  // 2. a realm of it, the default
  await page.click('nav.side a:has-text("Realms")');
  await page.fill('#f-realm', 'corp');
  await page.check('#use-corpldap');
  await page.click('button:has-text("Create realm")');
  await page.waitForURL(`${base}/manage/realms`);
  await page.click('button:has-text("Make corp the default")');
  await page.waitForURL(`${base}/manage/realms`);
  assert.equal(await flash(), 'Realm corp is now the default realm.');

  // 3. the two policies, picked from the action catalogue
  await page.click('nav.side a:has-text("Policies")');
  await page.click('a:has-text("New policy")');
  await page.waitForURL(`${base}/manage/policies/new`);
  await page.fill('#f-name', 'autoenroll');
  await page.selectOption('#f-scope', 'enrollment');
  await page.click('button:has-text("Show the actions of this scope")');
  await page.locator('#f-a-autoenrollment').waitFor();
  await page.selectOption('#f-a-autoenrollment', 'email');
  await page.fill('#f-realm', 'corp');
  await page.click('button.primary:has-text("Save")');
  await page.waitForURL(`${base}/manage/policies`);
  assert.equal(await flash(), 'Policy autoenroll created: autoenrollment=email.');
  await page.click('a:has-text("New policy")');
  await page.waitForURL(`${base}/manage/policies/new`);
  await page.fill('#f-name', 'directory_password');
  await page.selectOption('#f-a-otppin', '1');
  await page.fill('#f-realm', 'corp');
  await screenshot(page, 'seed-3-policy');
  await page.click('button.primary:has-text("Save")');
  await page.waitForURL(`${base}/manage/policies`);
  assert.equal(await flash(), 'Policy directory_password created: otppin=1.');

  // 4. the e-mail provider (the first one becomes the default)
  await page.click('nav.side a:has-text("Providers")');
  await page.click('a[href="/manage/providers/new/SMTPEmailProvider"]');
  await page.waitForURL(`${base}/manage/providers/new/SMTPEmailProvider`);
  await page.fill('#p-name', 'mail');
  await page.fill('#f-SMTP_SERVER', '127.0.0.1');
  await page.fill('#f-SMTP_PORT', String(smtp.port));
  await page.fill('#f-EMAIL_FROM', 'otpd@example.org');
  await page.fill('#f-EMAIL_SUBJECT', 'Your login code');
  assert.equal(await page.isChecked('#p-default'), true);
  await screenshot(page, 'seed-4-provider');
  await page.click('button.primary:has-text("Save")');
  await page.waitForURL(`${base}/manage/providers/email/mail`);

  // the dashboard: everything the scenario needs is there
  await page.click('nav.side a:has-text("Dashboard")');
  assert.deepEqual(await states(), ['configured', 'configured', 'configured', 'configured', 'configured']);
  assert.match(await page.locator('p.ok-text').innerText(), /Everything the seed scenario needs is configured/);
  // health: the provider as the dispatcher saw it; the user stores on request
  assert.match(await page.locator('section[aria-labelledby=health-h] tbody tr').first().innerText(), /^mail\tE-mail\thealthy/);
  await page.click('button:has-text("Check the user stores")');
  await page.waitForURL(`${base}/manage/check-stores`);
  assert.match(await page.locator('.store-checks li').first().innerText(), /^corpldap: works — reachable, \d+ users$/);
  await page.goto(`${base}/manage/`);
  await assertAccessible(page, 'dashboard, configured');
  await screenshot(page, 'seed-5-dashboard');
  watch.assertClean('configuration through the UI');

  // 5. alice's first login on the login test page: password → code by e-mail → password+code
  const user = await (await browser.newContext()).newPage();
  await user.goto(`${base}/auth/index`);
  await user.fill('#user', 'alice');
  await user.fill('#pass', 'alicepw');
  await user.click('#submit');
  await user.locator('#result').filter({ hasText: 'A code was sent to a***@example.org.' }).waitFor({ timeout: 10_000 });
  await waitFor(() => smtp.mails.length >= 1, { what: 'the code mail' });
  const mail = smtp.mails[0]!;
  assert.deepEqual(mail.to, ['alice@example.org']);
  const code = codeIn(mailBody(mail));
  await user.fill('#pass', `alicepw${code}`);
  await user.click('#submit');
  await user.locator('#result').filter({ hasText: 'You are logged in' }).waitFor({ timeout: 10_000 });
  await screenshot(user, 'seed-6-login');
  await user.context().close();

  // 6. the delivery log shows that message
  await page.click('nav.side a:has-text("Delivery log")');
  const row = page.locator('tbody tr').first();
  await row.waitFor();
  const text = await row.innerText();
  // channel, masked destination, status, provider, the provider's message id; then the owner
  assert.match(text, /\tE-mail\ta\*\*\*@example\.org\taccepted\tmail\t<[^>]+@example\.org>\t/);
  assert.match(text, /alice@corp/);
  assert.doesNotMatch(text, new RegExp(code), 'the code itself is never shown');
  await screenshot(page, 'seed-7-delivery-log');

  // 7. the simulator explains why alice is challenged with the directory password
  await page.goto(`${base}/manage/policies/simulate?user=alice&realm=corp&client=&scope=authentication&action=otppin`);
  const decision = await page.locator('.decision').first().innerText();
  assert.match(decision, /otppin/);
  assert.match(decision, /directory_password/, 'names the policy that decides');
  await screenshot(page, 'seed-8-simulator');

  // the setup was made through the UI: each step is in the audit as the admin's API call
  const audit = (await t.admin('/audit/search', { administrator: 'admin', rp: '100' })).json;
  const actions = new Set((audit.rows as { cell: unknown[] }[]).map((r) => String(r.cell[4])));
  for (const a of ['system/setResolver', 'system/setRealm', 'system/setDefaultRealm', 'system/setPolicy', 'system/setProvider']) assert.ok(actions.has(a), `${a} audited`);
  watch.assertClean('the whole scenario');
});
