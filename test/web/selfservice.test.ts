/**
 * The self-service portal /selfservice/ in Chromium, against real slapd, SMTP sink and HTTP SMS
 * gateway (issue 13's proof):
 * - an autoenrolled e-mail user logs in with password, then a code sent to the own e-mail
 *   token; sees the masked address and the "weaker than an app" notice; enrolls an authenticator
 *   app (the code is computed from the otpauth URL the page shows), which is active only after
 *   its first code; then logs in at /auth/index with password + TOTP;
 * - a user whose HOTP token is locked logs in with a code sent to the own e-mail token and
 *   unlocks the HOTP token, which then authenticates again.
 * Every page under the strict CSP (no violation), axe-core clean, with a screenshot; the
 * session cookie never appears in a page.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { hotp, totpStep } from '../../src/otp/hotp.ts';
import { haveBinary } from '../helpers/require.ts';
import { initToken, settle, startOobEnv, type OobApp, type OobEnv } from '../oob/harness.ts';
import { assertAccessible, CHROMIUM, launchBrowser, screenshot, watchPage } from './browser.ts';
import { base32Decode } from '../helpers/base32.ts';

const skip = haveBinary('/usr/sbin/slapd', 'slapd') || haveBinary(CHROMIUM, 'chromium');
const KEY = '3132333435363738393031323334353637383930';

let env: OobEnv;
let app: OobApp;
let browser: Browser;
let base: string;
before(async () => {
  if (skip) return;
  env = await startOobEnv();
  app = await env.app();
  await app.policy('ae', 'enrollment', 'autoenrollment=email');
  await app.policy('pin', 'authentication', 'otppin=1');
  await app.policy('portal', 'selfservice', 'mfa_login, enrollTOTP, verify, reset, resync, enable, disable, setDescription, delete, history');
  await app.t.app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.t.app.server.address() as AddressInfo).port}`;
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await app?.close();
  await env?.close();
});


/** The portal's pages must never carry the session cookie's value. */
async function assertNoCookieInPage(context: BrowserContext, page: Page, where: string): Promise<void> {
  const cookie = (await context.cookies()).find((c) => c.name === 'user_selfservice')?.value;
  if (cookie) assert.ok(!(await page.content()).includes(cookie), `${where}: the page shows the session cookie`);
}

/** Logs in with the password, picks the e-mail token, enters the code the SMTP sink received. */
async function logInWithMailCode(page: Page, user: string, password: string, destination: string, shots?: string): Promise<void> {
  await page.goto(`${base}/selfservice/login`);
  if (shots) {
    await assertAccessible(page, '/selfservice/login');
    await screenshot(page, `${shots}-login`);
  }
  await page.fill('#username', user);
  await page.fill('#password', password);
  await page.click('button[type=submit]');
  await page.getByText(`to ${destination}`).waitFor();
  if (shots) {
    await assertAccessible(page, 'second step');
    await screenshot(page, `${shots}-second-step`);
  }
  const mails = app.mails().length;
  await page.getByRole('button', { name: 'Send me a code' }).click();
  await page.locator('#code-sent').filter({ hasText: `A code was sent to ${destination}` }).waitFor();
  if (shots) {
    await assertAccessible(page, 'code sent');
    await screenshot(page, `${shots}-code-sent`);
  }
  const code = await app.mailCode(mails + 1);
  await page.fill('#otp', code);
  await page.click('button[type=submit]');
  await page.waitForURL(`${base}/selfservice/`);
}

describe('/selfservice/ in Chromium', { skip }, () => {
  test('an autoenrolled e-mail user logs in with a mailed code, sees the masked address, adds an authenticator app, then logs in with it', async () => {
    // bob's first login autoenrolls an e-mail token (the seed scenario)
    const first = await app.check({ user: 'bob', pass: 'bobpw' });
    assert.equal(first.json.result.value, false, first.body);
    await app.mailCode(1);
    // later that day (past the e-mail blocking window, so the portal's login sends a new code)
    app.clock.advance(121_000);
    const context = await browser.newContext();
    const page = await context.newPage();
    const watch = watchPage(page);

    // a wrong password gets a plain message and no second step
    await page.goto(`${base}/selfservice/login`);
    await page.fill('#username', 'bob');
    await page.fill('#password', 'not-bobs');
    await page.click('button[type=submit]');
    await page.locator('.error-summary').filter({ hasText: 'Wrong user name, password or code.' }).waitFor();
    await screenshot(page, 'selfservice-login-wrong');

    await logInWithMailCode(page, 'bob', 'bobpw', 'b***@example.org', 'selfservice');
    await page.getByText('b***@example.org').waitFor();
    assert.equal(await page.locator('#email-only').count(), 1, 'the e-mail-only notice');
    assert.doesNotMatch(await page.content(), /bob@example\.org/);
    await assertAccessible(page, '/selfservice/ tokens');
    await assertNoCookieInPage(context, page, 'tokens');
    await screenshot(page, 'selfservice-tokens-email-only');

    // add an authenticator app: the QR page shows the otpauth URL once
    await page.getByRole('link', { name: 'Add an authenticator app' }).first().click();
    await page.waitForURL(`${base}/selfservice/enroll`);
    await assertAccessible(page, '/selfservice/enroll');
    await screenshot(page, 'selfservice-enroll');
    await page.fill('#description', 'my phone');
    await page.getByRole('button', { name: 'Create' }).click();
    const otpauth = await page.locator('#otpauth').innerText();
    const url = new URL(otpauth);
    assert.equal(url.protocol, 'otpauth:');
    const seed = base32Decode(url.searchParams.get('secret')!);
    assert.equal(await page.locator('img[alt^="QR code"]').count(), 1);
    await assertAccessible(page, 'QR page');
    await screenshot(page, 'selfservice-enrolled-qr');
    const serial = /token ([A-Z0-9]+)/i.exec(await page.locator('img[alt^="QR code"]').getAttribute('alt') ?? '')![1]!;
    // not active before its first code: the TOTP does not log in yet
    const code0 = hotp(seed, totpStep(app.clock.now()), 6);
    assert.equal((await app.check({ user: 'bob', pass: `bobpw${code0}` })).json.result.value, false);
    // a wrong first code is refused with a message; the right one activates the token
    await page.fill('#otp', code0 === '000000' ? '111111' : '000000');
    await page.getByRole('button', { name: 'Activate' }).click();
    await page.locator('#verify-error').filter({ hasText: 'Wrong or expired code.' }).waitFor();
    await assertAccessible(page, 'first code wrong');
    await page.fill('#otp', code0);
    await page.getByRole('button', { name: 'Check the code' }).click();
    await page.waitForURL(`${base}/selfservice/`);
    await page.locator('.flash').filter({ hasText: `Your authenticator app ${serial} is active.` }).waitFor();
    assert.equal(await page.locator('#email-only').count(), 0, 'no e-mail-only notice with an app');
    await assertAccessible(page, 'tokens with an app');
    await screenshot(page, 'selfservice-tokens-with-app');

    // the phone layout
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot(page, 'selfservice-tokens-phone');
    await page.setViewportSize({ width: 1280, height: 800 });

    // /auth/index with password + the app's next code
    app.clock.advance(30_000);
    await page.goto(`${base}/auth/index`);
    await page.fill('#user', 'bob');
    await page.fill('#pass', `bobpw${hotp(seed, totpStep(app.clock.now()), 6)}`);
    await page.click('#submit');
    await page.locator('#result').filter({ hasText: 'You are logged in' }).waitFor({ timeout: 10_000 });
    await screenshot(page, 'selfservice-auth-index-totp');

    // the activity page shows the logins
    await page.goto(`${base}/selfservice/history`);
    await page.getByText('auth/check').first().waitFor();
    await assertAccessible(page, '/selfservice/history');
    await screenshot(page, 'selfservice-history');

    // logging out ends the session
    await page.goto(`${base}/selfservice/`);
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL(/\/selfservice\/login\?loggedout=1$/);
    await page.goto(`${base}/selfservice/`);
    await page.waitForURL(/\/selfservice\/login/);
    watch.assertClean('/selfservice/');
    await settle(app);
    await context.close();
  });

  test('a user whose HOTP token is locked logs in with a mailed code and unlocks it', async () => {
    const serial = await initToken(app, { type: 'hmac', otpkey: KEY, user: 'alice', description: 'key fob' });
    await initToken(app, { type: 'email', email_address: 'alice@example.org', user: 'alice' });
    await app.t.admin('/admin/set', { serial, MaxFailCount: '3' });
    for (let i = 0; i < 3; i++) await app.check({ user: 'alice', pass: `alicepw${100000 + i}` });
    const seed = Buffer.from(KEY, 'hex');
    assert.equal((await app.check({ user: 'alice', pass: `alicepw${hotp(seed, 0, 6)}` })).json.result.value, false, 'locked');

    const context = await browser.newContext();
    const page = await context.newPage();
    const watch = watchPage(page);
    await logInWithMailCode(page, 'alice', 'alicepw', 'a***@example.org');
    const card = page.locator(`#token-${serial}`);
    await card.getByText('locked').waitFor();
    await assertAccessible(page, 'tokens with a locked token');
    await screenshot(page, 'selfservice-tokens-locked');
    await card.getByRole('button', { name: 'Unlock (reset failed tries)' }).click();
    await page.locator('.flash').filter({ hasText: `Token ${serial} unlocked` }).waitFor();
    await card.getByText('active').waitFor();
    await screenshot(page, 'selfservice-tokens-unlocked');
    assert.equal((await app.check({ user: 'alice', pass: `alicepw${hotp(seed, 0, 6)}` })).json.result.value, true, 'the token works again');

    // test the e-mail token: a code is sent, the page asks for it
    const mailSerial = (await app.tokensOf('alice')).find((t) => t.type === 'email')!.serial;
    const mails = app.mails().length;
    app.clock.advance(121_000);
    await page.locator(`#token-${mailSerial}`).getByRole('button', { name: 'Send a test code' }).click();
    await page.getByText('A code was sent to a***@example.org').waitFor();
    await assertAccessible(page, 'test code page');
    await screenshot(page, 'selfservice-verify');
    await page.fill('#otp', await app.mailCode(mails + 1));
    await page.getByRole('button', { name: 'Check the code' }).click();
    await page.locator('.flash').filter({ hasText: `Token ${mailSerial} works` }).waitFor();

    // a forged form (another site, no CSRF token) changes nothing
    const before = (await app.services.tokens.repository.bySerial(serial))!;
    const forged = await page.evaluate(async (s) => (await fetch(`/selfservice/tokens/${s}/disable`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'csrf_token=x' })).status, serial);
    assert.equal(forged, 403);
    assert.equal((await app.services.tokens.repository.bySerial(serial))!.active, before.active);
    watch.problems.splice(0);
    watch.assertClean('/selfservice/ locked');
    await settle(app);
    await context.close();
  });
});
