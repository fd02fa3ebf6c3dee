/**
 * Audit in Chromium: the rows newest first with counts and paging; column filters as GET
 * parameters (user, result, action with a wildcard, administrator, a time range) narrow the
 * rows, a filter nothing matches says so, a bad date is refused next to its field; sorting by
 * a column header; the filtered rows download as CSV (LinOTP's column names, exactly the rows
 * of the filter); the chain check says in plain words that the chain is intact, and, after a
 * row is changed in the database, that it is broken and where. Every page passes axe-core and
 * leaves a screenshot.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { FakeClock } from '../../src/util/clock.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { haveBinary } from '../helpers/require.ts';
import { assertAccessible, CHROMIUM, launchBrowser, screenshot, watchPage, logInToManage } from './browser.ts';

const skip = haveBinary(CHROMIUM, 'chromium');

describe('audit in the browser', { skip }, () => {
  const clock = new FakeClock(Date.UTC(2026, 2, 10, 9, 0, 0));
  let t: TestApp;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let watch: ReturnType<typeof watchPage>;
  let base: string;

  before(async () => {
    t = await startTestApp({ clock });
    // 60 failed logins of alice on 10 March, 5 of bob on 11 March, two admin calls on 12 March
    for (let i = 0; i < 60; i++) await t.post('/validate/check', { user: 'alice', pass: `wrong${i}` });
    clock.set(Date.UTC(2026, 2, 11, 9, 0, 0));
    for (let i = 0; i < 5; i++) await t.post('/validate/check', { user: 'bob', pass: `wrong${i}` });
    clock.set(Date.UTC(2026, 2, 12, 9, 0, 0));
    await t.admin('/system/setConfig', { key: 'DefaultOtpLen', value: '8' });
    await t.admin('/system/getConfig');
    // what the pages themselves write (every search is audited) falls on the day after
    clock.set(Date.UTC(2026, 2, 13, 9, 0, 0));
    await t.services.audit.settled();
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    browser = await launchBrowser();
    context = await browser.newContext({ acceptDownloads: true });
    page = await context.newPage();
    watch = watchPage(page);
    await logInToManage(page, base);
  });

  after(async () => {
    await context?.close();
    await browser?.close();
    await t?.close();
  });

  const column = async (index: number) => page.locator(`table.audit tbody tr td:nth-child(${index})`).allInnerTexts();
  const count = async (params: Record<string, string>) => (await t.admin('/audit/search', { ...params, rp: '1' })).json.total as number;

  test('newest first with counts and paging', async () => {
    await page.goto(`${base}/manage/audit`);
    assert.equal(await page.locator('h1').innerText(), 'Audit');
    assert.equal(await page.locator('nav.side a[aria-current=page]').innerText(), 'Audit');
    const total = await count({});
    assert.ok(total > 60);
    // the page's own search may be counted too: the caption says what the page was given
    assert.match(await page.locator('caption').innerText(), /^Audit rows 1–50 of \d{2,}$/);
    const ids = (await column(1)).map(Number);
    assert.equal(ids.length, 50);
    assert.deepEqual(ids, [...ids].sort((a, b) => b - a), 'newest first');
    assert.equal(await page.locator('th[aria-sort]').innerText(), 'Number ▼');
    await assertAccessible(page, 'audit list');
    await screenshot(page, 'manage-audit');
    await page.setViewportSize({ width: 390, height: 800 });
    await screenshot(page, 'manage-audit-phone');
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.click('a[rel=next]');
    await page.waitForURL(`${base}/manage/audit?page=2`);
    assert.match(await page.locator('caption').innerText(), /^Audit rows 51–\d+ of \d+$/);
    const next = (await column(1)).map(Number);
    assert.deepEqual(next, [...next].sort((a, b) => b - a));
    assert.ok(next[0]! < ids[0]! && next[0]! >= ids[49]! - 5, 'page 2 goes on where page 1 ended (give or take the rows the pages wrote)');
  });

  test('column filters as GET parameters, a time range, sorting; nothing matched and a bad date said plainly', async () => {
    await page.goto(`${base}/manage/audit`);
    await page.fill('#f-user', 'bob');
    await page.selectOption('#f-success', '0');
    await page.click('button:has-text("Search")');
    await page.waitForURL(/\/manage\/audit\?.*user=bob/);
    assert.match(page.url(), /success=0/);
    assert.deepEqual(await column(7), ['bob', 'bob', 'bob', 'bob', 'bob']);
    assert.deepEqual(await column(4), ['failed', 'failed', 'failed', 'failed', 'failed']);
    assert.equal(await page.locator('caption').innerText(), 'Audit rows 1–5 of 5');
    assert.equal(await page.inputValue('#f-user'), 'bob', 'the filter stays in its field');

    await page.goto(`${base}/manage/audit?action=system/*&administrator=admin&from=2026-03-12&to=2026-03-12`);
    assert.deepEqual(await column(3), ['system/getConfig', 'system/setConfig']);
    assert.deepEqual(await column(9), ['admin', 'admin']);
    assert.match((await page.locator('table.audit tbody tr').last().locator('time').getAttribute('datetime'))!, /^2026-03-12T09:00:00/);

    await page.goto(`${base}/manage/audit?user=alice&to=2026-03-10&sort=user&dir=asc`);
    assert.equal(await page.locator('caption').innerText(), 'Audit rows 1–50 of 60');
    assert.equal(await page.locator('th[aria-sort]').innerText(), 'User ▲');
    await page.click('th[aria-sort] a');
    assert.equal(await page.locator('th[aria-sort]').innerText(), 'User ▼');
    assert.match(page.url(), /user=alice/, 'sorting keeps the filters');
    await assertAccessible(page, 'filtered audit list');
    await screenshot(page, 'manage-audit-filtered');

    await page.goto(`${base}/manage/audit?user=alice&from=2026-03-11`);
    assert.equal(await page.locator('.empty').innerText(), 'No audit row matches these filters. Clear the filters.');

    await page.goto(`${base}/manage/audit?user=alice&from=yesterday`);
    assert.match(await page.locator('#e-from').innerText(), /^Use a date \(2025-03-01\) or a date and time with zone/);
    assert.equal(await page.getAttribute('#f-from', 'aria-invalid'), 'true');
    assert.equal(await page.inputValue('#f-from'), 'yesterday');
    assert.equal(await page.inputValue('#f-user'), 'alice');
    assert.equal(await page.locator('table.audit').count(), 0);
    await assertAccessible(page, 'audit with a bad date');
  });

  test('the filtered rows download as CSV', async () => {
    await page.goto(`${base}/manage/audit?user=alice&success=0`);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('a:has-text("Export these rows as CSV")')]);
    assert.match(download.suggestedFilename(), /^otpd-audit-\d{8}T\d{6}\.csv$/);
    const lines = readFileSync((await download.path())!, 'utf8').trim().split('\n');
    assert.equal(lines[0], '"number","date","sig_check","missing_line","action","success","serial","token_type","user","realm","administrator","action_detail","info","linotp_server","client","log_level","clearance_level"');
    assert.equal(lines.length - 1, 60);
    for (const line of lines.slice(1)) assert.match(line, /^"\d+","2026-03-10T09:00:00\.000Z","OK","","validate\/check","0","[^"]*","[^"]*","alice",/);
    const ids = lines.slice(1).map((l) => Number(l.split(',')[0]!.replaceAll('"', '')));
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'oldest first');

    const all = await context.request.get(`${base}/manage/audit/export`);
    assert.equal(all.headers()['content-type'], 'text/csv; charset=utf-8');
    assert.ok((await all.text()).trim().split('\n').length - 1 >= 67, 'without filters: every row');
  });

  test('verify says in plain words that the chain is intact, then that and where it is broken', async () => {
    await page.goto(`${base}/manage/audit`);
    await page.click('a:has-text("Verify the chain")');
    await page.waitForURL(`${base}/manage/audit/verify`);
    assert.equal(await page.locator('.result h2').innerText(), 'The audit chain is intact');
    assert.match(await page.locator('.result p').innerText(), /^All \d+ rows were checked: none was changed, deleted or inserted/);
    await assertAccessible(page, 'chain intact');
    await screenshot(page, 'manage-audit-verify');

    const victim = await t.services.db.kysely.selectFrom('audit').select(['id', 'seq']).where('user', '=', 'bob').orderBy('id').executeTakeFirstOrThrow();
    await t.services.db.kysely.updateTable('audit').set({ success: '1' }).where('id', '=', victim.id).execute();
    await page.click('a:has-text("Check again")');
    await page.waitForURL(`${base}/manage/audit/verify`);
    assert.equal(await page.locator('.result h2').innerText(), 'The audit chain is broken');
    assert.match(await page.locator('.result p').first().innerText(), new RegExp(`^The first break is at row ${victim.id} \\(sequence ${victim.seq}\\): content does not match its hash`));
    assert.match(await page.locator('.result .problems').innerText(), new RegExp(`^row ${victim.id}: `));
    await assertAccessible(page, 'chain broken');
    await screenshot(page, 'manage-audit-verify-broken');
    watch.assertClean('audit pages');
  });
});
