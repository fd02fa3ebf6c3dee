/**
 * RADIUS clients in Chromium against a real otpd with its RADIUS listener: the empty list says
 * what to do; a client made through the form gets a generated shared secret shown once (a
 * reload shows it no more, and no later page holds it), and Debian's radclient sending an
 * Access-Request with that secret gets an answer while a wrong secret gets none; a bad address
 * and a taken name are refused next to their field with the input kept and the typed secret
 * never sent back; editing keeps the secret unless a new one is generated (shown once, the old
 * one stops working); Message-Authenticator off is warned about on the list; delete asks and
 * removes. Every page passes axe-core and leaves a screenshot.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { loadSettings } from '../../src/config/settings.ts';
import { startServer, type Running } from '../../src/server.ts';
import { freePort } from '../fixtures/slapd.ts';
import { haveBinary } from '../helpers/require.ts';
import { radclient } from '../radius/helpers.ts';
import { assertAccessible, CHROMIUM, launchBrowser, screenshot, watchPage, logInToManage } from './browser.ts';

const skip = haveBinary(CHROMIUM, 'chromium') || haveBinary('radclient', 'freeradius-utils');

describe('RADIUS clients in the browser', { skip }, () => {
  let running: Running;
  let dir: string;
  let radiusPort: number;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let watch: ReturnType<typeof watchPage>;
  let base: string;
  let firstSecret = '';

  /** One Access-Request; `reply` is undefined when otpd did not answer (a wrong secret is dropped). */
  const ask = (secret: string, withAuthenticator = true) => radclient({
    target: `127.0.0.1:${radiusPort}`, secret, timeoutSeconds: 1, retries: 1,
    input: `User-Name=nobody,User-Password=not-a-password${withAuthenticator ? ',Message-Authenticator=0x00' : ''}`,
  });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'otpd-ui-radius-'));
    radiusPort = await freePort();
    running = await startServer(loadSettings({ OTPD_DATA_DIR: join(dir, 'data'), OTPD_PORT: '0', OTPD_LOG_LEVEL: 'silent', OTPD_RADIUS_PORT: String(radiusPort), OTPD_DEMO: '0' }, dir));
    await running.services.admins.add('admin', 'admin-password-1');
    base = running.url;
    browser = await launchBrowser();
    context = await browser.newContext();
    page = await context.newPage();
    watch = watchPage(page);
    page.on('dialog', (d) => void d.accept());
    await logInToManage(page, base);
  });

  after(async () => {
    await context?.close();
    await browser?.close();
    await running?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const stored = async (name: string) => (await running.services.radiusClients.list()).find((c) => c.name === name);

  test('the empty list says what to do next', async () => {
    await page.goto(`${base}/manage/radius`);
    assert.equal(await page.locator('h1').innerText(), 'RADIUS clients');
    assert.match(await page.locator('.empty').innerText(), /^No RADIUS clients yet — add one/);
    assert.equal(await page.locator('nav.side a[aria-current=page]').innerText(), 'RADIUS');
    await assertAccessible(page, 'empty RADIUS list');
    await screenshot(page, 'manage-radius-empty');
  });

  test('create: the generated secret is shown once, works with radclient, and is gone on reload', async () => {
    await page.goto(`${base}/manage/radius`);
    await page.click('a:has-text("New RADIUS client")');
    await page.waitForURL(`${base}/manage/radius/new`);
    assert.equal(await page.getAttribute('#f-secret', 'placeholder'), 'empty — otpd generates one');
    assert.equal(await page.isChecked('#f-require_message_authenticator'), true, 'Message-Authenticator is required by default');
    await assertAccessible(page, 'new RADIUS client form');
    await screenshot(page, 'manage-radius-form');
    await page.fill('#f-name', 'vpn');
    await page.fill('#f-address', '127.0.0.1');
    await page.click('button.primary');
    await page.waitForURL(`${base}/manage/radius/vpn/secret`);
    assert.equal(await page.locator('.flash').innerText(), 'RADIUS client vpn created.');
    firstSecret = await page.inputValue('#secret-value');
    assert.match(firstSecret, /^[A-Za-z0-9_-]{32}$/);
    assert.match(await page.locator('.once h2').innerText(), /shown only once/);
    await assertAccessible(page, 'secret shown once');
    await screenshot(page, 'manage-radius-secret');

    await page.reload();
    assert.equal(await page.locator('#secret-value').count(), 0);
    assert.match(await page.locator('.notice').innerText(), /was shown once/);
    assert.ok(!(await page.content()).includes(firstSecret), 'a reload does not show the secret');
    await page.goto(`${base}/manage/radius/vpn`);
    assert.ok(!(await page.content()).includes(firstSecret), 'the edit page does not hold the secret');
    assert.equal(await page.getAttribute('#f-secret', 'placeholder'), 'set — leave empty to keep');

    const answered = await ask(firstSecret);
    assert.equal(answered.reply, 'Access-Reject', answered.output);
    const wrong = await ask('not-the-secret');
    assert.equal(wrong.reply, undefined, 'a wrong secret gets no answer');

    await page.goto(`${base}/manage/radius`);
    const row = page.locator('tbody tr', { hasText: 'vpn' });
    assert.equal(await row.innerText(), 'vpn\t127.0.0.1\t—\trequired\tAPI / UI');
    assert.match(await page.locator('caption').innerText(), /RADIUS clients 1–1 of 1/);
    await assertAccessible(page, 'RADIUS list');
    await screenshot(page, 'manage-radius');
    await page.setViewportSize({ width: 390, height: 800 });
    await screenshot(page, 'manage-radius-phone');
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test('a bad address and a taken name are refused next to their field; the input is kept, the typed secret is not sent back', async () => {
    await page.goto(`${base}/manage/radius/new`);
    await page.fill('#f-name', 'office');
    await page.fill('#f-address', '10.1.2.3/8');
    await page.fill('#f-secret', 'typed-secret-of-office');
    await page.click('button.primary');
    await page.locator('#e-address').waitFor();
    assert.equal(await page.locator('#e-address').innerText(), 'Host bits set in 10.1.2.3/8; did you mean 10.0.0.0/8?');
    assert.equal(await page.getAttribute('#f-address', 'aria-invalid'), 'true');
    assert.match(await page.locator('#problems').innerText(), /^Address or network: Host bits set/);
    assert.equal(await page.inputValue('#f-name'), 'office');
    assert.equal(await page.inputValue('#f-address'), '10.1.2.3/8');
    assert.equal(await page.inputValue('#f-secret'), '');
    assert.match(await page.locator('#r-secret').innerText(), /Type the secret again/);
    assert.ok(!(await page.content()).includes('typed-secret-of-office'));
    assert.equal(await stored('office'), undefined, 'nothing stored');
    await assertAccessible(page, 'RADIUS form with an error');
    await screenshot(page, 'manage-radius-form-error');

    await page.fill('#f-name', 'vpn');
    await page.fill('#f-address', '10.0.0.0/8');
    await page.click('button.primary');
    await page.locator('#e-name').waitFor();
    assert.match(await page.locator('#e-name').innerText(), /^A RADIUS client named vpn exists already/);
    assert.equal((await stored('vpn'))!.address, '127.0.0.1', 'the existing client is untouched');

    await page.fill('#f-name', 'loop2');
    await page.fill('#f-address', '127.0.0.1');
    await page.click('button.primary');
    await page.locator('#e-address').waitFor();
    assert.match(await page.locator('#e-address').innerText(), /vpn/, 'an address another client has is refused, naming it');
  });

  test('edit keeps the secret; Message-Authenticator off is warned about; a generated new secret replaces the old one', async () => {
    await page.goto(`${base}/manage/radius/vpn`);
    await page.setChecked('#f-require_message_authenticator', false);
    await page.click('button.primary');
    await page.waitForURL(`${base}/manage/radius`);
    assert.equal(await page.locator('.flash').innerText(), 'RADIUS client vpn saved; its shared secret is unchanged.');
    assert.match(await page.locator('.warning').innerText(), /Message-Authenticator is not required for vpn/);
    assert.equal((await stored('vpn'))!.require_message_authenticator, false);
    assert.equal((await ask(firstSecret, false)).reply, 'Access-Reject', 'the stored secret was kept');

    await page.goto(`${base}/manage/radius/vpn`);
    await page.setChecked('#f-require_message_authenticator', true);
    await page.check('#f-generate');
    await page.click('button.primary');
    await page.waitForURL(`${base}/manage/radius/vpn/secret`);
    assert.equal(await page.locator('.flash').innerText(), 'RADIUS client vpn saved with a new shared secret.');
    const second = await page.inputValue('#secret-value');
    assert.notEqual(second, firstSecret);
    assert.equal((await ask(second)).reply, 'Access-Reject');
    assert.equal((await ask(firstSecret)).reply, undefined, 'the old secret no longer works');
  });

  test('delete asks, names the client and removes it', async () => {
    await page.goto(`${base}/manage/radius/vpn`);
    assert.equal(await page.locator('.danger-zone button.danger').innerText(), 'Delete RADIUS client vpn');
    await assertAccessible(page, 'RADIUS edit form');
    await screenshot(page, 'manage-radius-edit');
    await page.click('.danger-zone button.danger');
    await page.waitForURL(`${base}/manage/radius`);
    assert.equal(await page.locator('.flash').innerText(), 'RADIUS client vpn deleted: otpd no longer answers 127.0.0.1.');
    assert.equal(await stored('vpn'), undefined);
    watch.assertClean('RADIUS pages');
  });
});
