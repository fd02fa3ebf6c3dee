/**
 * Administrators and API keys in Chromium: a new administrator is made through the form (a
 * short password, two different passwords and a taken name are refused next to their field,
 * the passwords never sent back) and can log in; an API key made in the UI is shown once (a
 * reload shows it no more), works with the JSON API, is revoked in the UI after a question
 * naming it (with scripts off, a confirm page asks), and the API then refuses it; a bad expiry
 * is refused next to its field; an administrator is deleted after the question, never oneself.
 * Every page passes axe-core and leaves a screenshot.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { haveBinary } from '../helpers/require.ts';
import { assertAccessible, CHROMIUM, launchBrowser, screenshot, watchPage, logInToManage } from './browser.ts';

const skip = haveBinary(CHROMIUM, 'chromium');

describe('administrators and API keys in the browser', { skip }, () => {
  let t: TestApp;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let watch: ReturnType<typeof watchPage>;
  let base: string;
  let uiKey = '';


  before(async () => {
    t = await startTestApp();
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    browser = await launchBrowser();
    context = await browser.newContext();
    page = await context.newPage();
    watch = watchPage(page);
    page.on('dialog', (d) => void d.accept());
    await logInToManage(page, base, 'admin', 'admin-password-1');
  });

  after(async () => {
    await context?.close();
    await browser?.close();
    await t?.close();
  });

  /** The JSON API with a bearer key: HTTP status and the envelope. */
  const withKey = async (key: string) => {
    const res = await fetch(`${base}/system/getConfig`, { headers: { authorization: `Bearer ${key}` } });
    return { status: res.status, body: (await res.json()) as any };
  };

  test('the list shows the administrators; a new one is refused with plain words next to the field, then made', async () => {
    await page.goto(`${base}/manage/admins`);
    assert.equal(await page.locator('h1').innerText(), 'Administrators');
    assert.equal(await page.locator('nav.side a[aria-current=page]').innerText(), 'Administrators');
    const first = page.locator('tbody tr').first();
    assert.match(await first.innerText(), /^admin \(you\)\t.+\t1$/);
    assert.match((await first.locator('time').getAttribute('datetime'))!, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    assert.match((await first.locator('time').getAttribute('title'))!, / UTC$/, 'local time shown, UTC in the tooltip');
    await assertAccessible(page, 'administrators');
    await screenshot(page, 'manage-admins');

    await page.fill('#f-name', 'ops');
    await page.fill('#f-password', 'short');
    await page.fill('#f-again', 'short');
    await page.click('button:has-text("Create administrator")');
    await page.locator('#e-password').waitFor();
    assert.equal(await page.locator('#e-password').innerText(), 'The password must have at least 8 characters.');
    assert.equal(await page.inputValue('#f-name'), 'ops', 'the name is kept');
    assert.equal(await page.inputValue('#f-password'), '', 'a password is never sent back');
    assert.ok(!(await page.content()).includes('value="short"'));
    await assertAccessible(page, 'new administrator refused');
    await screenshot(page, 'manage-admins-error');

    await page.fill('#f-password', 'ops-password-1');
    await page.fill('#f-again', 'ops-password-2');
    await page.click('button:has-text("Create administrator")');
    await page.locator('#e-again').waitFor();
    assert.match(await page.locator('#e-again').innerText(), /^The two passwords differ/);

    await page.fill('#f-name', 'admin');
    await page.fill('#f-password', 'ops-password-1');
    await page.fill('#f-again', 'ops-password-1');
    await page.click('button:has-text("Create administrator")');
    await page.locator('#e-name').waitFor();
    assert.equal(await page.locator('#e-name').innerText(), "An administrator 'admin' exists already.");

    await page.fill('#f-name', 'bad name');
    await page.fill('#f-password', 'ops-password-1');
    await page.fill('#f-again', 'ops-password-1');
    await page.click('button:has-text("Create administrator")');
    await page.locator('#e-name').waitFor();
    assert.equal(await page.locator('#e-name').innerText(), 'Use 1-64 of A-Z a-z 0-9 _ . @ -.');
    assert.equal(await t.services.admins.exists('bad name'), false);

    await page.fill('#f-name', 'ops');
    await page.fill('#f-password', 'ops-password-1');
    await page.fill('#f-again', 'ops-password-1');
    await page.click('button:has-text("Create administrator")');
    await page.waitForURL(`${base}/manage/admins/ops`);
    assert.match(await page.locator('.flash').innerText(), /^Administrator ops created\./);
    assert.equal(await t.services.admins.checkLogin('ops', 'ops-password-1'), true);
    assert.match(await page.locator('.empty').innerText(), /^No API keys yet/);
  });

  test('an API key made in the UI is shown once, works with the API, and is refused once revoked in the UI', async () => {
    await page.goto(`${base}/manage/admins/ops`);
    await page.fill('#f-expires', 'tomorrow');
    await page.fill('#f-label', 'backup job');
    await page.click('button:has-text("Create API key")');
    await page.locator('#e-expires').waitFor();
    assert.match(await page.locator('#e-expires').innerText(), /^'tomorrow': use a duration/);
    assert.equal(await page.inputValue('#f-label'), 'backup job');
    assert.equal((await t.services.admins.listApiKeys('ops')).length, 0);

    await page.fill('#f-expires', '90d');
    await page.click('button:has-text("Create API key")');
    await page.waitForURL(`${base}/manage/admins/ops/key`);
    uiKey = await page.inputValue('#key-value');
    assert.match(uiKey, /^otpd_[A-Za-z0-9_-]{8}_[A-Za-z0-9_-]{43}$/);
    assert.match(await page.locator('.flash').innerText(), /^API key \d+ created for ops\.$/);
    await assertAccessible(page, 'API key shown once');
    await screenshot(page, 'manage-admins-key');
    await page.reload();
    assert.equal(await page.locator('#key-value').count(), 0);
    assert.ok(!(await page.content()).includes(uiKey), 'a reload does not show the key');

    const ok = await withKey(uiKey);
    assert.equal(ok.status, 200);
    assert.equal(ok.body.result.status, true);

    await page.goto(`${base}/manage/admins/ops`);
    assert.ok(!(await page.content()).includes(uiKey.slice(15)), 'the admin page never holds the key');
    const row = page.locator('tbody tr', { hasText: 'backup job' });
    assert.match(await row.innerText(), /backup job\totpd_\S{8}_…\tactive\t/);
    assert.equal(await page.locator('.top .who strong').innerText(), 'admin', 'the header names who is signed in');
    await assertAccessible(page, 'administrator with keys');
    await screenshot(page, 'manage-admins-show');
    await row.locator('button:has-text("Revoke key")').click();
    await page.waitForURL(`${base}/manage/admins/ops`);
    assert.match(await page.locator('.flash').innerText(), /^API key \d+ \(backup job\) of ops revoked/);
    assert.match(await page.locator('tbody tr', { hasText: 'backup job' }).innerText(), /\trevoked\t/);

    const refused = await withKey(uiKey);
    assert.equal(refused.status, 401);
    assert.equal(refused.body.result.error.code, 2001);
  });

  test('without scripts, revoking and deleting ask on a page of their own', async () => {
    const key = await t.services.admins.createApiKey('ops', 'nojs');
    const id = (await t.services.admins.listApiKeys('ops')).find((k) => k.label === 'nojs')!.id;
    const plain = await browser.newContext({ javaScriptEnabled: false });
    try {
      const p = await plain.newPage();
      await logInToManage(p, base, 'admin', 'admin-password-1');
      await p.goto(`${base}/manage/admins/ops`);
      await p.locator('tbody tr', { hasText: 'nojs' }).locator('button').click();
      await p.waitForURL(`${base}/manage/admins/ops/keys/${id}/revoke`);
      assert.equal(await p.locator('h1').innerText(), `Revoke API key ${id} (nojs) of ops?`);
      assert.equal((await withKey(key)).status, 200, 'nothing revoked before the answer');
      // (axe-core cannot run where scripts are off: its checks wait on timers; the page is checked below with scripts on)
      await screenshot(p, 'manage-admins-revoke');
      await p.click('button.danger');
      await p.waitForURL(`${base}/manage/admins/ops`);
      assert.equal((await withKey(key)).status, 401);

      await p.click('.danger-zone button.danger');
      await p.waitForURL(`${base}/manage/admins/ops/delete`);
      assert.equal(await p.locator('h1').innerText(), 'Delete administrator ops?');
      assert.equal(await t.services.admins.exists('ops'), true);
      await p.click('a:has-text("Cancel")');
      await p.waitForURL(`${base}/manage/admins/ops`);
    } finally {
      await plain.close();
    }
  });

  test('delete asks and removes an administrator; oneself cannot be deleted', async () => {
    await page.goto(`${base}/manage/admins/admin`);
    assert.match(await page.locator('.danger-zone').innerText(), /You cannot delete yourself/);
    assert.equal(await page.locator('.danger-zone button').count(), 0);
    const opsKey = await t.services.admins.createApiKey('ops', 'goes with it');
    await page.goto(`${base}/manage/admins/ops`);
    await page.click('.danger-zone button.danger');
    await page.waitForURL(`${base}/manage/admins`);
    assert.equal(await page.locator('.flash').innerText(), 'Administrator ops deleted, with its sessions and API keys.');
    assert.equal(await t.services.admins.exists('ops'), false);
    assert.equal((await withKey(opsKey)).status, 401);
    watch.assertClean('administrator pages');
    // (fetched, not opened: Chromium logs a console error for a page answered 404)
    const gone = await context.request.get(`${base}/manage/admins/ops`);
    assert.equal(gone.status(), 404);
    assert.match(await gone.text(), /<h1>No such administrator<\/h1>/);
  });
});
