/**
 * System settings in Chromium: the runtime-config catalogue as grouped forms, each key with the
 * input of its type (a number with its bounds, True/False, a choice), its default, whether it is
 * set and its help; a change saved through the form is what /system/getConfig answers; a value
 * otpd refuses (ERR2703) is shown next to its field with what was typed kept and nothing of the
 * group written; "reset to default" unsets one key; Enter saves (never resets); keys by pattern
 * are set by name, an unknown one refused next to the key field; secrets are write-only. Every
 * page passes axe-core and leaves a screenshot.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { haveBinary } from '../helpers/require.ts';
import { assertAccessible, CHROMIUM, launchBrowser, screenshot, watchPage, logInToManage } from './browser.ts';

const skip = haveBinary(CHROMIUM, 'chromium');

describe('system settings in the browser', { skip }, () => {
  let t: TestApp;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let watch: ReturnType<typeof watchPage>;
  let base: string;

  before(async () => {
    t = await startTestApp();
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    browser = await launchBrowser();
    context = await browser.newContext();
    page = await context.newPage();
    watch = watchPage(page);
    await logInToManage(page, base);
  });

  after(async () => {
    await context?.close();
    await browser?.close();
    await t?.close();
  });

  const config = async (key: string) => (await t.admin('/system/getConfig', { key })).json.result.value[`getConfig ${key}`];
  const tokens = () => page.locator('#g-tokens form');

  test('every key with its type as the input, default, state and help, in groups', async () => {
    await page.goto(`${base}/manage/settings`);
    assert.equal(await page.locator('h1').innerText(), 'System settings');
    assert.equal(await page.locator('nav.side a[aria-current=page]').innerText(), 'Settings');
    const groups = await page.locator('section.setting-group h2').allInnerTexts();
    assert.deepEqual(groups, ['New tokens', 'Validation', 'Failed logins per account', 'SMS and e-mail codes', 'Delivery', 'User stores', 'RADIUS', "LinOTP's provider keys", 'Other keys']);
    const otpLen = page.locator('#f-DefaultOtpLen');
    assert.equal(await otpLen.getAttribute('type'), 'number');
    assert.equal(await otpLen.getAttribute('min'), '6');
    assert.equal(await otpLen.getAttribute('max'), '10');
    assert.equal(await otpLen.inputValue(), '6');
    assert.equal(await page.locator('#m-DefaultOtpLen').innerText(), 'integer 6–10 · default 6 · LinOTP · default in force');
    assert.equal(await page.locator('#h-DefaultOtpLen').innerText(), 'OTP digits of new tokens');
    assert.equal(await page.locator('#f-PrependPin').evaluate((e) => e.tagName), 'SELECT');
    assert.equal(await page.inputValue('#f-PrependPin'), 'True');
    assert.deepEqual(await page.locator('#f-hotp-hashlib option').allInnerTexts(), ['sha1', 'sha256', 'sha512']);
    assert.equal(await page.getAttribute('#f-SMSProviderConfig', 'type'), 'password');
    assert.match(await page.locator('#g-tokens').innerText(), /AutoResyncTimeout\s+refused by otpd/);
    assert.equal(await page.locator('button.reset').count(), 0, 'nothing is set yet');
    await assertAccessible(page, 'settings');
    await screenshot(page, 'manage-settings');
    await page.setViewportSize({ width: 390, height: 800 });
    await screenshot(page, 'manage-settings-phone');
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test('a change saved through the form is what getConfig answers', async () => {
    await page.goto(`${base}/manage/settings`);
    await page.fill('#f-DefaultOtpLen', '8');
    await page.selectOption('#f-hotp-hashlib', 'sha256');
    await tokens().locator('button.primary').click();
    await page.waitForURL(`${base}/manage/settings#g-tokens`);
    assert.equal(await page.locator('.flash').innerText(), 'New tokens saved: DefaultOtpLen, hotp.hashlib.');
    assert.equal(await config('DefaultOtpLen'), '8');
    assert.equal(await config('hotp.hashlib'), 'sha256');
    assert.equal(await config('DefaultMaxFailCount'), '10', 'an unchanged key is not written');
    assert.equal((await t.services.config.shownEntries()).some((e) => e.key === 'DefaultMaxFailCount'), false);
    assert.equal(await page.inputValue('#f-DefaultOtpLen'), '8');
    assert.match(await page.locator('#m-DefaultOtpLen').innerText(), /· set$/);

    // Enter in a field saves the group; it never presses a reset button
    await page.fill('#f-DefaultMaxFailCount', '20');
    await page.press('#f-DefaultMaxFailCount', 'Enter');
    await page.waitForURL(`${base}/manage/settings#g-tokens`);
    assert.equal(await page.locator('.flash').innerText(), 'New tokens saved: DefaultMaxFailCount.');
    assert.equal(await config('DefaultMaxFailCount'), '20');
    assert.equal(await config('DefaultOtpLen'), '8');
  });

  test('a refused value is shown next to its field, the input kept, nothing of the group written', async () => {
    await page.goto(`${base}/manage/settings`);
    await page.fill('#f-DefaultOtpLen', '12');
    await page.fill('#f-DefaultSyncWindow', '500');
    await tokens().locator('button.primary').click();
    await page.locator('#e-DefaultOtpLen').waitFor();
    assert.equal(await page.locator('#e-DefaultOtpLen').innerText(), 'Must be between 6 and 10.');
    assert.equal(await page.getAttribute('#f-DefaultOtpLen', 'aria-invalid'), 'true');
    assert.match(await page.locator('#problems').innerText(), /DefaultOtpLen: Must be between 6 and 10\./);
    assert.equal(await page.inputValue('#f-DefaultOtpLen'), '12', 'what was typed is kept');
    assert.equal(await page.inputValue('#f-DefaultSyncWindow'), '500');
    assert.equal(await config('DefaultOtpLen'), '8');
    assert.equal(await config('DefaultSyncWindow'), '1000', 'otpd checks every key before writing any');
    await assertAccessible(page, 'settings with a refused value');
    await page.locator('#g-tokens').screenshot({ path: `${process.cwd()}/.test-tmp/screenshots/manage-settings-error.png` });

    await page.selectOption('#f-DefaultResetFailCount', 'False');
    await page.fill('#f-DefaultOtpLen', '8');
    await page.fill('#f-DefaultSyncWindow', '1000');
    await tokens().locator('button.primary').click();
    await page.locator('#e-DefaultResetFailCount').waitFor();
    assert.equal(await page.locator('#e-DefaultResetFailCount').innerText(), 'otpd always resets the fail counter after a success.');
    assert.equal(await page.inputValue('#f-DefaultResetFailCount'), 'False');
    assert.equal(await config('DefaultResetFailCount'), 'True');
  });

  test('reset to default unsets one key', async () => {
    await page.goto(`${base}/manage/settings`);
    await page.click('button:has-text("Reset DefaultOtpLen to default")');
    await page.waitForURL(`${base}/manage/settings#g-tokens`);
    assert.equal(await page.locator('.flash').innerText(), 'DefaultOtpLen reset: its default (6).');
    assert.equal(await config('DefaultOtpLen'), '6');
    assert.equal((await t.services.config.shownEntries()).some((e) => e.key === 'DefaultOtpLen'), false);
    assert.equal(await page.inputValue('#f-DefaultOtpLen'), '6');
    assert.equal(await config('hotp.hashlib'), 'sha256', 'the other keys stay');
  });

  test('keys by pattern: set by name, unknown refused next to the key; a secret is write-only', async () => {
    await page.goto(`${base}/manage/settings`);
    await page.fill('#f-newkey', 'NoSuchSetting');
    await page.fill('#f-newvalue', '1');
    await page.click('button:has-text("Set key")');
    await page.locator('#e-newkey').waitFor();
    assert.match(await page.locator('#e-newkey').innerText(), /^otpd does not read it \(docs\/configuration.md lists the keys\)\.$/);
    assert.equal(await page.inputValue('#f-newkey'), 'NoSuchSetting');
    assert.equal(await config('NoSuchSetting'), null);

    await page.fill('#f-newkey', 'HMAC_CHALLENGE_PROMPT');
    await page.fill('#f-newvalue', 'Your code, please:');
    await page.click('button:has-text("Set key")');
    await page.waitForURL(`${base}/manage/settings#g-other`);
    assert.equal(await page.locator('.flash').innerText(), 'HMAC_CHALLENGE_PROMPT set.');
    assert.equal(await config('HMAC_CHALLENGE_PROMPT'), 'Your code, please:');
    assert.equal(await page.inputValue('#f-HMAC_CHALLENGE_PROMPT'), 'Your code, please:');
    assert.match(await page.locator('#h-HMAC_CHALLENGE_PROMPT').innerText(), /^<TYPE>_CHALLENGE_PROMPT: the message of a challenge/);

    await page.fill('#f-newkey', 'smtp.password');
    await page.fill('#f-newvalue', 'smtp-secret-77');
    await page.click('button:has-text("Set key")');
    await page.waitForURL(`${base}/manage/settings#g-other`);
    assert.equal(await config('smtp.password'), '__CENSORED__');
    assert.equal(await page.getAttribute('#f-smtp-password', 'type'), 'password');
    assert.equal(await page.getAttribute('#f-smtp-password', 'placeholder'), 'set — leave empty to keep');
    assert.ok(!(await page.content()).includes('smtp-secret-77'), 'the page never holds the secret');
    await page.locator('#g-other form.settings-form button.primary').click();
    await page.waitForURL(`${base}/manage/settings#g-other`);
    assert.equal(await page.locator('.flash').innerText(), 'Other keys: nothing changed.');
    assert.equal(t.services.config.get('smtp.password'), 'smtp-secret-77', 'an empty secret field keeps the secret');
    await page.fill('#f-smtp-password', 'smtp-secret-88');
    await page.locator('#g-other form.settings-form button.primary').click();
    await page.waitForURL(`${base}/manage/settings#g-other`);
    assert.equal(t.services.config.get('smtp.password'), 'smtp-secret-88');
    await assertAccessible(page, 'settings with other keys');
    await page.locator('#g-other').screenshot({ path: `${process.cwd()}/.test-tmp/screenshots/manage-settings-other.png` });
    watch.assertClean('settings pages');
  });

  test('an administrator whose policies do not grant system read gets the refusal, not the system pages', async () => {
    await t.services.admins.add('viewer', 'viewer-password-1');
    await t.admin('/system/setPolicy', { name: 'sysadmin', scope: 'system', action: 'read, write', realm: '*', user: 'admin', client: '*', active: 'True' });
    const other = await browser.newContext();
    try {
      const p = await other.newPage();
      await logInToManage(p, base, 'viewer', 'viewer-password-1');
      // fetched, not opened: Chromium logs a console error for a page answered 403
      for (const path of ['/manage/settings', '/manage/radius', '/manage/admins']) {
        const r = await other.request.get(`${base}${path}`);
        assert.equal(r.status(), 403, path);
        assert.match(await r.text(), /<h1>Not allowed<\/h1>[\s\S]*You do not have the administrative right to read/, path);
      }
    } finally {
      await other.close();
      await t.admin('/system/delPolicy', { name: 'sysadmin' });
    }
  });
});
