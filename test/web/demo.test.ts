/**
 * Demo mode in Chromium (docs/demo.md): /demo/messages lists the captured messages (empty
 * state, then alice's e-mail with the code) under the strict CSP, accessible; the yellow banner
 * with a link to the captured messages is on /auth/index, every /manage page (login and
 * dashboard) and the self-service portal; the seed scenario done by hand: /auth/index as alice with `demo` → the code at
 * /demo/messages → `demo` + code → logged in. Screenshots under .test-tmp/screenshots/.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { loadSettings } from '../../src/config/settings.ts';
import { startServer, type Running } from '../../src/server.ts';
import { haveBinary } from '../helpers/require.ts';
import { testTmpDir } from '../helpers/tmp.ts';
import { assertAccessible, CHROMIUM, launchBrowser, logInToManage, screenshot, watchPage } from './browser.ts';

const skip = haveBinary(CHROMIUM, 'chromium');

describe('demo mode in the browser', { skip }, () => {
  let dir: string;
  let running: Running;
  let browser: Browser;
  let base: string;

  before(async () => {
    dir = testTmpDir('otpd-ui-demo-');
    // RADIUS port from the brief's range 18600–18649 (demo mode always runs RADIUS)
    running = await startServer(loadSettings({ OTPD_DATA_DIR: join(dir, 'data'), OTPD_PORT: '0', OTPD_LOG_LEVEL: 'silent', OTPD_RADIUS_PORT: '18641' }, dir));
    await running.services.admins.add('admin', 'admin-password-1');
    base = running.url;
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await running?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const banner = (page: Page) => page.locator('aside.demo-banner');

  test('the seed scenario by hand: /auth/index as alice, the code at /demo/messages, demo + code', async () => {
    const page = await browser.newPage();
    const watch = watchPage(page);
    const empty = await page.goto(`${base}/demo/messages`);
    assert.equal(empty?.status(), 200);
    assert.match(empty!.headers()['content-security-policy'] ?? '', /default-src 'none'/);
    assert.equal(await page.locator('h1').innerText(), 'Captured messages');
    assert.match(await page.locator('.empty-state').innerText(), /^No messages yet — log in as alice or bob with password demo/);
    assert.match(await banner(page).innerText(), /^Demo mode — not for production/);
    await assertAccessible(page, '/demo/messages, empty');
    await screenshot(page, 'demo-messages-empty');

    await page.goto(`${base}/auth/index`);
    assert.match(await banner(page).innerText(), /Demo mode — log in as alice or bob with password demo/);
    await page.fill('#user', 'alice');
    await page.fill('#pass', 'demo');
    await page.click('#submit');
    await page.locator('#result').filter({ hasText: 'A code was sent to a***@example.org.' }).waitFor({ timeout: 10_000 });
    await assertAccessible(page, '/auth/index, demo, code sent');
    await screenshot(page, 'demo-auth-code-sent');

    // the banner's link leads to the messages
    await banner(page).locator('a[href="/demo/messages"]').click();
    await page.waitForURL(`${base}/demo/messages`);
    const rows = page.locator('table.demo-messages tbody tr');
    assert.equal(await rows.count(), 1);
    const cells = await rows.first().locator('td').allInnerTexts();
    assert.equal(cells[1], 'E-mail');
    assert.equal(cells[2], 'alice@example.org');
    const code = /\b(\d{6})\b/.exec(cells[3]!)?.[1];
    assert.ok(code, `a code in ${cells[3]}`);
    assert.match(await rows.first().locator('time').getAttribute('title') ?? '', /UTC/, 'local time shown, UTC in the tooltip');
    await assertAccessible(page, '/demo/messages, one message');
    await screenshot(page, 'demo-messages');

    await page.goto(`${base}/auth/index`);
    await page.fill('#user', 'alice');
    await page.fill('#pass', `demo${code}`);
    await page.click('#submit');
    await page.locator('#result').filter({ hasText: 'You are logged in' }).waitFor({ timeout: 10_000 });
    await screenshot(page, 'demo-auth-logged-in');
    watch.assertClean('demo pages');
    await page.close();
  });

  test('attack: a message text chosen by the caller is shown as text, never run', async () => {
    // /validate/check may choose the SMS text (`data`, unless enforce_smstext): it reaches the page
    const planted = '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script> <otp>';
    const res = await fetch(`${base}/validate/check`, { method: 'POST', body: new URLSearchParams({ user: 'bob', pass: 'demo', data: planted }) });
    assert.equal(((await res.json()) as any).detail.linotp_tokentype, 'sms');
    const page = await browser.newPage();
    const watch = watchPage(page);
    await page.goto(`${base}/demo/messages`);
    const text = await page.locator('table.demo-messages tbody tr').first().locator('.demo-text').innerText();
    assert.match(text, /^<img src=x onerror="document\.title='pwned'"><script>document\.title="pwned"<\/script> \d{6}$/);
    assert.equal(await page.locator('main img, main script').count(), 0);
    assert.notEqual(await page.title(), 'pwned');
    watch.assertClean('/demo/messages with planted markup');
    await page.close();
  });

  test('the banner is on every /manage page: login and dashboard', async () => {
    const page = await browser.newPage();
    const watch = watchPage(page);
    await page.goto(`${base}/manage/login`);
    assert.match(await banner(page).innerText(), /^Demo mode — not for production\. SMS and e-mails are not sent: see the captured messages\./);
    await assertAccessible(page, '/manage/login, demo');
    await logInToManage(page, base);
    assert.equal(await banner(page).locator('a').getAttribute('href'), '/demo/messages');
    await assertAccessible(page, '/manage/, demo');
    await screenshot(page, 'demo-manage-dashboard');
    await page.goto(`${base}/manage/resolvers`);
    assert.equal(await banner(page).count(), 1);
    assert.match(await page.locator('main').innerText(), /demo-users/);
    watch.assertClean('/manage in demo mode');
    await page.close();
  });

  test('the banner is on the self-service portal', async () => {
    const page = await browser.newPage();
    const watch = watchPage(page);
    await page.goto(`${base}/selfservice/login`);
    assert.match(await banner(page).innerText(), /^Demo mode — log in as alice or bob with password demo; codes are not sent: see the captured messages\.$/);
    assert.equal(await banner(page).locator('a').getAttribute('href'), '/demo/messages');
    await assertAccessible(page, '/selfservice/login, demo');
    await screenshot(page, 'demo-selfservice-login');
    watch.assertClean('/selfservice in demo mode');
    await page.close();
  });
});
