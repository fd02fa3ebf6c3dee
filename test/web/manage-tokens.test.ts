/**
 * The Tokens area of the management UI in Chromium, through the UI only: an HOTP token
 * enrolled on the page answers /validate/check with an OTP made from the seed its otpauth URL
 * showed, and that URL is never shown again (not at the form's address, not on the token's
 * page); an SMS enrollment with a phone number libphonenumber refuses shows the API's message
 * next to the field and keeps what was typed; disable stops validation and enable brings it
 * back; set PIN, resync with two OTPs, reset, details, assign/unassign each end with a flash
 * naming the token; removal asks first (a dialog with scripts, a page of its own without);
 * the list filters, sorts and pages with counts; an admin limited to realm A by an admin
 * policy sees only realm A's tokens and cannot open or change a realm-B token. Every page
 * runs under the strict CSP without a violation and passes axe-core's WCAG A/AA rules.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { hotp } from '../../src/otp/hotp.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { haveBinary } from '../helpers/require.ts';
import { assertAccessible, CHROMIUM, launchBrowser, screenshot, watchPage, logInToManage } from './browser.ts';
import { base32Decode } from '../helpers/base32.ts';

const skip = haveBinary(CHROMIUM, 'chromium');
let t: TestApp;
let browser: Browser;
let base: string;
let tmp: string;

const HELPDESK_PASSWORD = 'helpdesk-password-1';


before(async () => {
  if (skip) return;
  t = await startTestApp();
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  browser = await launchBrowser();
  tmp = mkdtempSync(join(tmpdir(), 'otpd-manage-tokens-'));
  const crypt = (pw: string) => execFileSync('openssl', ['passwd', '-6', pw]).toString().trim();
  writeFileSync(join(tmp, 'a'), `alice:${crypt('alice-pw')}:1001:1001:Alice Able,,,,alice@example.org:/:/bin/sh\ncarol:${crypt('carol-pw')}:1003:1003:Carol,,,,:/:/bin/sh\n`);
  writeFileSync(join(tmp, 'b'), `bob:${crypt('bob-pw')}:2002:2002:Bob Baker,,,,bob@example.org:/:/bin/sh\n`);
  for (const [path, form] of [
    ['/system/setResolver', { name: 'filea', type: 'passwdresolver', fileName: join(tmp, 'a') }],
    ['/system/setResolver', { name: 'fileb', type: 'passwdresolver', fileName: join(tmp, 'b') }],
    ['/system/setRealm', { realm: 'a', resolvers: 'useridresolver.PasswdIdResolver.IdResolver.filea' }],
    ['/system/setRealm', { realm: 'b', resolvers: 'useridresolver.PasswdIdResolver.IdResolver.fileb' }],
    ['/system/setDefaultRealm', { realm: 'a' }],
  ] as const) {
    const res = await t.admin(path, form);
    assert.equal(res.json?.result?.value, true, `${path}: ${res.body}`);
  }
  await t.services.admins.add('helpdesk', HELPDESK_PASSWORD);
});

after(async () => {
  await browser?.close();
  await t?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function loggedIn(name = 'admin', password = 'admin-password-1', options: { javaScriptEnabled?: boolean } = {}): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  await logInToManage(page, base, name, password);
  return { context, page };
}

const check = async (user: string, realm: string, pass: string) =>
  (await t.post('/validate/check', { user, realm, pass })).json?.result?.value;

const flash = (page: Page) => page.locator('.flash').innerText();

/** The value of a fact on a token's page (`<dt>label</dt><dd>value</dd>`). */
const fact = (page: Page, label: string) => page.locator(`dl.facts dt:text-is("${label}") + dd`).innerText();

let hotpSerial = '';
let hotpKey: Buffer = Buffer.alloc(0);

test('an empty list says what to do next', { skip }, async () => {
  const { context, page } = await loggedIn();
  const watch = watchPage(page);
  await page.click('nav.side a:text-is("Tokens")');
  await page.waitForURL(`${base}/manage/tokens`);
  assert.equal(await page.locator('h1').innerText(), 'Tokens');
  assert.equal(await page.locator('nav.side a[aria-current=page]').innerText(), 'Tokens');
  assert.match(await page.locator('.empty-state').innerText(), /^No tokens yet\. Enroll one, or turn on autoenrollment/);
  await assertAccessible(page, 'empty token list');
  await screenshot(page, 'manage-tokens-empty');
  watch.assertClean('empty token list');
  await context.close();
});

test('HOTP enrolled through the UI validates with the seed its otpauth URL showed once', { skip }, async () => {
  const { context, page } = await loggedIn();
  const watch = watchPage(page);
  await page.goto(`${base}/manage/tokens`);
  await page.click('a:text-is("Enroll a token")');
  await page.waitForURL(`${base}/manage/tokens/enroll`);
  assert.equal(await page.locator('fieldset[data-token-types=sms]').isVisible(), false, 'with scripts on, only the chosen type\'s fields show');
  await assertAccessible(page, 'enroll form');
  await screenshot(page, 'manage-tokens-enroll');
  await page.selectOption('#type', 'hmac');
  await page.fill('#user', 'alice');
  await page.fill('#realm', 'a');
  await page.fill('#pin', '4711');
  await page.fill('#description', "Alice's phone");
  await page.click('button:text-is("Enroll")');
  await page.locator('h1').filter({ hasText: /^Token OATH[0-9A-F]{8} enrolled$/ }).waitFor();
  hotpSerial = (await page.locator('h1').innerText()).split(' ')[1]!;
  const url = await page.inputValue('#otpauth-url');
  assert.match(url, new RegExp(`^otpauth://hotp/otpd:alice%40a\\?secret=[A-Z2-7]+&issuer=otpd&digits=6&algorithm=SHA1&counter=0$`));
  const key = new URL(url).searchParams.get('secret')!;
  assert.equal(await page.inputValue('#otpauth-key'), key);
  const qr = page.locator('img.qr');
  assert.match(await qr.getAttribute('src') ?? '', /^data:image\/png;base64,/);
  assert.ok((await qr.evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth)) > 100, 'the QR code is a real image');
  hotpKey = base32Decode(key);
  assert.equal(hotpKey.length, 20);
  await assertAccessible(page, 'enrollment result');
  await screenshot(page, 'manage-tokens-enrolled');

  assert.equal(await check('alice', 'a', `4711${hotp(hotpKey, 0)}`), true, 'the OTP from the shown seed validates');

  // the form's address again, the token's page, the list: the seed is never shown again
  const again = await page.goto(page.url());
  assert.equal(again?.request().method(), 'GET');
  assert.equal(await page.locator('h1').innerText(), 'Enroll a token');
  await page.goto(`${base}/manage/tokens/${hotpSerial}`);
  assert.equal(await page.locator('h1').innerText(), `Token ${hotpSerial}`);
  await page.goto(`${base}/manage/tokens`);
  for (const path of ['/manage/tokens/enroll', `/manage/tokens/${hotpSerial}`, '/manage/tokens']) {
    const html = await (await page.request.get(`${base}${path}`)).text();
    assert.ok(!html.includes(key) && !html.includes('otpauth://') && !html.includes(hotpKey.toString('hex')), `${path} shows the seed again`);
  }
  watch.assertClean('HOTP enrollment');
  await context.close();
});

test('TOTP, pw and spass tokens enrolled on the page validate', { skip }, async () => {
  const { context, page } = await loggedIn();
  const watch = watchPage(page);
  await page.goto(`${base}/manage/tokens/enroll`);
  await page.selectOption('#type', 'totp');
  await page.selectOption('#timestep', '60');
  await page.fill('#user', 'carol');
  await page.fill('#pin', 'tp');
  await page.click('button:text-is("Enroll")');
  await page.locator('h1').filter({ hasText: /^Token TOTP[0-9A-F]{8} enrolled$/ }).waitFor();
  const url = new URL(await page.inputValue('#otpauth-url'));
  assert.equal(url.protocol, 'otpauth:');
  assert.equal(url.host, 'totp');
  assert.equal(url.searchParams.get('period'), '60');
  const key = base32Decode(url.searchParams.get('secret')!);
  assert.equal(await check('carol', 'a', `tp${hotp(key, Math.floor(Date.now() / 60_000))}`), true, 'the TOTP of the shown seed validates');
  const totpSerial = (await page.locator('h1').innerText()).split(' ')[1]!;
  assert.equal((await t.admin('/admin/remove', { serial: totpSerial })).json.result.value, 1);

  await page.goto(`${base}/manage/tokens/enroll`);
  await page.selectOption('#type', 'pw');
  await page.fill('#password', 'static-Pw-1');
  await page.fill('#pin', 'pp');
  await page.fill('#serial', 'PW-UI-1');
  await page.fill('#realm', 'a');
  await page.click('button:text-is("Enroll")');
  await page.waitForURL(`${base}/manage/tokens/PW-UI-1`);
  assert.equal(await flash(page), 'Token PW-UI-1 enrolled (pw)');
  assert.equal(await fact(page, 'Realms'), 'a');
  assert.ok(!(await page.content()).includes('static-Pw-1'), 'the static password is never shown');
  assert.equal((await t.post('/validate/check_s', { serial: 'PW-UI-1', pass: 'ppstatic-Pw-1' })).json.result.value, true);

  await page.goto(`${base}/manage/tokens/enroll`);
  await page.selectOption('#type', 'spass');
  await page.fill('#pin', 'only-the-pin');
  await page.fill('#serial', 'SPASS-UI-1');
  await page.click('button:text-is("Enroll")');
  await page.waitForURL(`${base}/manage/tokens/SPASS-UI-1`);
  assert.equal((await t.post('/validate/check_s', { serial: 'SPASS-UI-1', pass: 'only-the-pin' })).json.result.value, true);
  for (const serial of ['PW-UI-1', 'SPASS-UI-1']) assert.equal((await t.admin('/admin/remove', { serial })).json.result.value, 1);
  watch.assertClean('TOTP/pw/spass enrollment');
  await context.close();
});

test('SMS and e-mail enrollment: the API\'s refusal next to the field, the input kept', { skip }, async () => {
  const { context, page } = await loggedIn();
  const watch = watchPage(page);
  await page.goto(`${base}/manage/tokens/enroll`);
  await page.selectOption('#type', 'sms');
  await page.fill('#phone', '+49151');
  await page.fill('#description', 'Bob mobile');
  await page.fill('#user', 'bob');
  await page.fill('#realm', 'b');
  await page.fill('#pin', 'secret-pin');
  await page.click('button:text-is("Enroll")');
  await page.locator('#phone-error').waitFor();
  assert.equal(await page.locator('#phone-error').innerText(), "Invalid parameter 'phone': not a possible phone number for +49 (wrong number of digits)");
  assert.match(await page.locator('.error-summary').innerText(), /^The token was not enrolled\. Invalid parameter 'phone'/);
  assert.equal(await page.getAttribute('#phone', 'aria-invalid'), 'true');
  assert.equal(await page.inputValue('#type'), 'sms');
  assert.equal(await page.inputValue('#phone'), '+49151', 'the number typed is kept');
  assert.equal(await page.inputValue('#description'), 'Bob mobile');
  assert.equal(await page.inputValue('#user'), 'bob');
  assert.equal(await page.inputValue('#pin'), '', 'the PIN is never sent back');
  assert.equal(await page.locator('fieldset[data-token-types=sms]').isVisible(), true);
  await assertAccessible(page, 'enroll form with an error');
  await screenshot(page, 'manage-tokens-enroll-error');
  assert.equal((await t.admin('/admin/show', { filter: 'Bob mobile' })).json.result.value.resultset.tokens, 0, 'nothing was enrolled');

  await page.fill('#phone', '+4915123456789');
  await page.fill('#pin', 'secret-pin');
  await page.click('button:text-is("Enroll")');
  await page.waitForURL(/\/manage\/tokens\/LSSM[0-9A-F]{8}$/);
  const serial = decodeURIComponent(new URL(page.url()).pathname.split('/').pop()!);
  assert.equal(await flash(page), `Token ${serial} enrolled (SMS)`);
  assert.equal(await fact(page, 'Phone'), '+4915123456789');
  assert.equal(await fact(page, 'Owner'), 'bob@b');
  assert.equal(await fact(page, 'Description'), 'Bob mobile');

  // e-mail without an address: the API's missing-parameter message next to the e-mail field
  await page.goto(`${base}/manage/tokens/enroll`);
  await page.selectOption('#type', 'email');
  await page.fill('#description', 'no address');
  await page.click('button:text-is("Enroll")');
  await page.locator('#email-error').waitFor();
  assert.equal(await page.locator('#email-error').innerText(), "Missing parameter: 'email_address'");
  assert.equal(await page.inputValue('#description'), 'no address');
  // an unknown owner: next to the user field
  await page.fill('#email', 'nobody@example.org');
  await page.fill('#user', 'nobody');
  await page.click('button:text-is("Enroll")');
  await page.locator('#user-error').waitFor();
  assert.match(await page.locator('#user-error').innerText(), /^User nobody@a not found$/);
  assert.equal(await page.inputValue('#email'), 'nobody@example.org');
  // a serial that exists already is never re-seeded from this form
  await page.fill('#user', '');
  await page.fill('#serial', hotpSerial);
  await page.click('button:text-is("Enroll")');
  await page.locator('#serial-error').waitFor();
  assert.match(await page.locator('#serial-error').innerText(), new RegExp(`^A token with serial ${hotpSerial} exists already`));
  assert.equal(await check('alice', 'a', `4711${hotp(hotpKey, 1)}`), true, 'the existing token kept its seed');
  watch.assertClean('SMS/e-mail enrollment');
  await context.close();
});

test('a token\'s page: facts, disable/enable, PIN, resync, reset, details, assign, audit', { skip }, async () => {
  const { context, page } = await loggedIn();
  const watch = watchPage(page);
  await page.goto(`${base}/manage/tokens`);
  await page.click(`a:text-is("${hotpSerial}")`);
  await page.waitForURL(`${base}/manage/tokens/${hotpSerial}`);
  assert.equal(await fact(page, 'Type'), 'HOTP');
  assert.equal(await fact(page, 'Owner'), 'alice@a');
  assert.equal(await fact(page, 'Realms'), 'a');
  assert.equal(await fact(page, 'Counter'), '2');
  assert.equal(await fact(page, 'Fail count / max fail'), '0 / 10');

  await page.click('button:text-is("Disable")');
  await page.waitForURL(`${base}/manage/tokens/${hotpSerial}`);
  assert.equal(await flash(page), `Token ${hotpSerial} disabled`);
  assert.equal(await fact(page, 'Active'), 'no disabled');
  assert.equal(await check('alice', 'a', `4711${hotp(hotpKey, 2)}`), false, 'a disabled token does not validate');
  await page.click('button:text-is("Enable")');
  assert.equal(await flash(page), `Token ${hotpSerial} enabled`);
  assert.equal(await check('alice', 'a', `4711${hotp(hotpKey, 2)}`), true, 'enabled again, it validates');

  await page.fill('#pin', '0815');
  await page.click('button:text-is("Set PIN")');
  assert.equal(await flash(page), `PIN of token ${hotpSerial} set`);
  assert.equal(await check('alice', 'a', `4711${hotp(hotpKey, 3)}`), false, 'the old PIN no longer works');
  assert.equal(await fact(page, 'Fail count / max fail'), '0 / 10');
  await page.reload();
  assert.equal(await fact(page, 'Fail count / max fail'), '1 / 10');
  await page.click('button:text-is("Reset fail counter")');
  assert.equal(await flash(page), `Fail counter of token ${hotpSerial} reset`);
  assert.equal(await fact(page, 'Fail count / max fail'), '0 / 10');

  // resync: two values far past the count window; a wrong pair is refused next to the field
  await page.fill('#otp1', hotp(hotpKey, 40));
  await page.fill('#otp2', hotp(hotpKey, 42));
  await page.click('button:text-is("Resync")');
  await page.locator('#otp1-error').waitFor();
  assert.match(await page.locator('#otp1-error').innerText(), /^Not resynchronised: the two OTPs are not consecutive/);
  assert.equal(await page.inputValue('#otp2'), hotp(hotpKey, 42));
  await page.fill('#otp1', hotp(hotpKey, 40));
  await page.fill('#otp2', hotp(hotpKey, 41));
  await page.click('button:text-is("Resync")');
  assert.equal(await flash(page), `Token ${hotpSerial} resynchronised`);
  assert.equal(await fact(page, 'Counter'), '42');
  assert.equal(await check('alice', 'a', `0815${hotp(hotpKey, 42)}`), true, 'after the resync the next OTP validates with the new PIN');

  await page.fill('#description', 'Alice, second phone');
  await page.click('button:text-is("Save details")');
  assert.equal(await flash(page), `Token ${hotpSerial}: description set`);
  assert.equal(await fact(page, 'Description'), 'Alice, second phone');

  await page.click('button:text-is("Unassign from alice@a")');
  assert.equal(await flash(page), `Token ${hotpSerial} unassigned`);
  assert.equal(await fact(page, 'Owner'), 'not assigned');
  await page.fill('#user', 'nobody');
  await page.fill('#realm', 'b');
  await page.click('button:text-is("Assign")');
  await page.locator('#user-error').waitFor();
  assert.equal(await page.locator('#user-error').innerText(), 'User nobody@b not found');
  assert.equal(await page.inputValue('#realm'), 'b');
  await page.fill('#user', 'carol');
  await page.fill('#realm', 'a');
  await page.click('button:text-is("Assign")');
  assert.equal(await flash(page), `Token ${hotpSerial} assigned to carol@a`);
  assert.equal(await fact(page, 'Owner'), 'carol@a');

  const audit = await page.locator('table.audit tbody tr').evaluateAll((rows) => rows.map((r) => r.children[1]!.textContent));
  assert.equal(audit.length, 10, 'the 10 newest audit rows');
  // (the refused assignment to nobody@b failed before it named a token: its audit row has no serial)
  assert.deepEqual(audit.slice(0, 4), ['admin/assign', 'admin/unassign', 'admin/set', 'validate/check']);
  assert.match(await page.locator('table.audit caption').innerText(), /^The 10 newest of \d+$/);
  await assertAccessible(page, 'token page');
  await screenshot(page, 'manage-tokens-detail');
  await page.setViewportSize({ width: 390, height: 800 });
  await screenshot(page, 'manage-tokens-detail-phone');
  watch.assertClean('token page');
  await context.close();
});

test('an SMS token\'s phone number is changed on its page; a bad one is refused next to the field', { skip }, async () => {
  const { context, page } = await loggedIn();
  const list = (await t.admin('/admin/show', { filter: 'Bob mobile' })).json.result.value.data;
  const serial = list[0]['LinOtp.TokenSerialnumber'] as string;
  await page.goto(`${base}/manage/tokens/${serial}`);
  await page.fill('#phone', '+49 2');
  await page.click('button:text-is("Save details")');
  await page.locator('#phone-error').waitFor();
  assert.match(await page.locator('#phone-error').innerText(), /^Invalid parameter 'phone': not a possible phone number/);
  assert.equal(await page.inputValue('#phone'), '+49 2');
  assert.equal(await fact(page, 'Phone'), '+4915123456789', 'unchanged');
  await page.fill('#phone', '+12015550123');
  await page.click('button:text-is("Save details")');
  assert.equal(await flash(page), `Token ${serial}: phone number set`);
  assert.equal(await fact(page, 'Phone'), '+12015550123');
  await context.close();
});

test('removal asks first, naming the serial: a dialog with scripts, a page of its own without', { skip }, async () => {
  const made = [];
  for (const serial of ['GONE1', 'GONE2']) {
    made.push((await t.admin('/admin/init', { type: 'spass', serial, pin: 'x', tokenrealm: 'a' })).json.result.value);
  }
  assert.deepEqual(made, [true, true]);
  const { context, page } = await loggedIn();
  const watch = watchPage(page);
  await page.goto(`${base}/manage/tokens/GONE1`);
  const asked: string[] = [];
  page.once('dialog', (d) => void (asked.push(d.message()), d.dismiss()));
  await page.click('button:text-is("Remove token GONE1…")');
  await page.waitForTimeout(200);
  assert.deepEqual(asked, ['Remove token GONE1? This cannot be undone.']);
  assert.equal(page.url(), `${base}/manage/tokens/GONE1`, 'dismissed: nothing sent');
  assert.equal((await t.admin('/admin/show', { serial: 'GONE1' })).json.result.value.resultset.tokens, 1);
  page.once('dialog', (d) => void d.accept());
  await page.click('button:text-is("Remove token GONE1…")');
  await page.waitForURL(`${base}/manage/tokens`);
  assert.equal(await flash(page), 'Token GONE1 removed');
  assert.equal((await t.admin('/admin/show', { serial: 'GONE1' })).json.result.value.resultset.tokens, 0);
  // the confirmation page (what a browser without scripts gets) passes axe too: form.submit()
  // sends the form without the submit event, so without the dialog's confirmation
  await page.goto(`${base}/manage/tokens/GONE2`);
  await page.locator('form[data-remove-confirm]').evaluate((form) => (form as unknown as { submit(): void }).submit());
  await page.locator('h1:text-is("Remove token GONE2?")').waitFor();
  assert.equal((await t.admin('/admin/show', { serial: 'GONE2' })).json.result.value.resultset.tokens, 1, 'not removed before the confirmation');
  await assertAccessible(page, 'removal confirmation');
  watch.assertClean('removal with scripts');
  await context.close();

  const noScript = await loggedIn('admin', 'admin-password-1', { javaScriptEnabled: false });
  await noScript.page.goto(`${base}/manage/tokens/GONE2`);
  await noScript.page.click('button:text-is("Remove token GONE2…")');
  await noScript.page.locator('h1:text-is("Remove token GONE2?")').waitFor();
  assert.equal((await t.admin('/admin/show', { serial: 'GONE2' })).json.result.value.resultset.tokens, 1, 'not removed before the confirmation');
  await screenshot(noScript.page, 'manage-tokens-remove-confirm');
  await noScript.page.click('button:text-is("Remove token GONE2")');
  await noScript.page.waitForURL(`${base}/manage/tokens`);
  assert.equal(await flash(noScript.page), 'Token GONE2 removed');
  assert.equal((await t.admin('/admin/show', { serial: 'GONE2' })).json.result.value.resultset.tokens, 0);
  await noScript.context.close();
});

test('the list filters, sorts and pages with counts', { skip }, async () => {
  // 60 more tokens, each with a description that sorts (bulk0001 … bulk0060)
  for (let i = 1; i <= 60; i++) {
    const res = await t.admin('/admin/init', { type: 'spass', serial: `BULK${String(i).padStart(4, '0')}`, description: `bulk${String(i).padStart(4, '0')}`, tokenrealm: i % 2 ? 'a' : 'b' });
    assert.equal(res.json.result.value, true);
  }
  const total = (await t.admin('/admin/show', {})).json.result.value.resultset.tokens as number;
  assert.equal(total, 62);
  const { context, page } = await loggedIn();
  const watch = watchPage(page);
  await page.goto(`${base}/manage/tokens`);
  assert.equal(await page.locator('p.count').innerText(), '1–50 of 62');
  assert.equal(await page.locator('table.tokens tbody tr').count(), 50);
  assert.match(await page.locator('nav.paging').innerText(), /page 1 of 2/);
  await assertAccessible(page, 'token list');
  await screenshot(page, 'manage-tokens-list');
  await page.click('a:text-is("Next page")');
  assert.equal(await page.locator('p.count').innerText(), '51–62 of 62');
  assert.equal(new URL(page.url()).search, '?page=2');

  await page.goto(`${base}/manage/tokens`);
  await page.click('th a:text-is("Description")');
  await page.click('th a:has-text("Description")');
  assert.equal(new URL(page.url()).search, '?sort=description&dir=desc');
  assert.equal(await page.getAttribute('th:has-text("Description")', 'aria-sort'), 'descending');
  const descriptions = await page.locator('table.tokens tbody tr td:nth-child(6)').allInnerTexts();
  assert.deepEqual(descriptions.slice(0, 2), ['bulk0060', 'bulk0059']);

  await page.fill('#q', 'bulk001');
  await page.selectOption('#realm', 'a');
  await page.click('button:text-is("Filter")');
  assert.equal(new URL(page.url()).search, '?q=bulk001&realm=a&sort=description&dir=desc');
  assert.deepEqual(await page.locator('table.tokens tbody tr td:first-child').allInnerTexts(), ['BULK0019', 'BULK0017', 'BULK0015', 'BULK0013', 'BULK0011']);
  assert.equal(await page.locator('p.count').innerText(), '1–5 of 5');
  assert.deepEqual(await page.locator('table.tokens tbody tr td:nth-child(2)').allInnerTexts(), ['active', 'active', 'active', 'active', 'active']);
  await page.fill('#q', 'no such thing');
  await page.click('button:text-is("Filter")');
  assert.match(await page.locator('.empty-state').innerText(), /^No token matches this filter\./);
  await page.click('.empty-state a:text-is("clear the filter")');
  assert.equal(await page.locator('p.count').innerText(), '1–50 of 62');

  // status words: disabled, locked
  await t.admin('/admin/disable', { serial: 'BULK0001' });
  await t.admin('/admin/set', { serial: 'BULK0002', MaxFailCount: '1' });
  await t.services.db.kysely.updateTable('tokens').set({ fail_count: 1 }).where('serial', '=', 'BULK0002').execute();
  await page.goto(`${base}/manage/tokens?q=BULK000`);
  const rows = await page.locator('table.tokens tbody tr').evaluateAll((trs) => trs.slice(0, 3).map((tr) => `${tr.children[0]!.textContent} ${tr.children[1]!.textContent}`));
  assert.deepEqual(rows, ['BULK0001 disabled', 'BULK0002 locked', 'BULK0003 active']);
  await page.setViewportSize({ width: 390, height: 800 });
  await screenshot(page, 'manage-tokens-list-phone');
  watch.assertClean('token list');
  await context.close();
});

test('an admin limited to realm A sees only realm A\'s tokens and cannot open or change a realm-B token', { skip }, async () => {
  for (const [name, user, realm] of [['superadmin', 'admin', '*'], ['helpdeska', 'helpdesk', 'a']] as const) {
    const res = await t.admin('/system/setPolicy', { name, scope: 'admin', action: '*', user, realm, client: '' });
    assert.equal(res.json.result.status, true, res.body);
  }
  const bSerial = 'BULK0002';
  const { context, page } = await loggedIn('helpdesk', HELPDESK_PASSWORD);
  const watch = watchPage(page);
  await page.goto(`${base}/manage/tokens`);
  const visible = (await t.admin('/admin/show', { viewrealm: 'a', pagesize: '1' })).json.result.value.resultset.tokens as number;
  assert.equal(await page.locator('p.count').innerText(), `1–${visible} of ${visible}`);
  const realms = await page.locator('table.tokens tbody tr td:nth-child(5)').allInnerTexts();
  assert.ok(realms.length > 0 && realms.every((r) => r === 'a'), `only realm a: ${realms.join(' ')}`);
  await page.goto(`${base}/manage/tokens?realm=b`);
  assert.match(await page.locator('.empty-state').innerText(), /^No token matches this filter\./);

  watch.assertClean('restricted admin, list');
  // (a 404 page: the browser logs the status as a console error, so the watch ends here)
  const answer = await page.goto(`${base}/manage/tokens/${bSerial}`);
  assert.equal(answer?.status(), 404);
  assert.equal(await page.locator('h1').innerText(), 'Token not found');
  const csrf = (await context.cookies()).find((c) => c.name === 'csrf_access_token')!.value;
  for (const action of ['disable', 'remove', 'set', 'pin']) {
    const res = await page.request.post(`${base}/manage/tokens/${bSerial}/${action}`, { form: { csrf_token: csrf, confirmed: '1', description: 'hijacked', pin: '1' }, maxRedirects: 0 });
    assert.equal(res.status(), 404, `${action} on a realm-B token: ${res.status()}`);
  }
  const b = (await t.admin('/admin/show', { serial: bSerial })).json.result.value.data[0];
  assert.equal(b['LinOtp.Isactive'], true);
  assert.equal(b['LinOtp.TokenDesc'], 'bulk0002');
  // a realm-A token: the restricted admin may act on it
  const other = await context.newPage();
  const watchOther = watchPage(other);
  await other.goto(`${base}/manage/tokens/BULK0001`);
  await other.click('button:text-is("Enable")');
  assert.equal(await flash(other), 'Token BULK0001 enabled');
  watchOther.assertClean('restricted admin, realm-A token');
  await context.close();
});
