/**
 * The Users pages in Chromium over a real slapd and a flat file of 120 users: the default
 * realm is chosen, a search matches anywhere (non-ASCII and filter metacharacters included),
 * sorting and paging with counts ("51–100 of 120"), a search that finds nobody says what to
 * try; a user's page shows the attributes (mail, mobile) and the user's tokens, each linking
 * to its token page; a user without a mobile number is told so; an unknown user is a 404
 * page; a directory that cannot be asked is said on the page (never an empty list); an admin
 * restricted to one realm cannot list or open the users of another, and one without the
 * system read right gets a refusal page for user stores and realms. axe-core on every page,
 * screenshots of the search and the user's page (also phone-sized).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { FIXTURE_ADMIN_DN, FIXTURE_ADMIN_PW, FIXTURE_BASE, FIXTURE_USERS, SLAPD_BIN, startSlapd, type Slapd } from '../fixtures/slapd.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { haveBinary } from '../helpers/require.ts';
import { assertAccessible, CHROMIUM, launchBrowser, screenshot, watchPage, logInToManage } from './browser.ts';

const skip = haveBinary(CHROMIUM, 'chromium') || haveBinary(SLAPD_BIN, 'slapd');
const ALICE = FIXTURE_USERS.find((u) => u.uid === 'alice')!;
const KEY = '3132333435363738393031323334353637383930';
const FILE_USERS = 120;
const num = (n: number) => String(n).padStart(3, '0');

describe('users in the browser', { skip }, () => {
  let t: TestApp;
  let ldap: Slapd;
  let browser: Browser;
  let base: string;
  let tmp: string;
  let context: BrowserContext;
  let page: Page;
  let watch: ReturnType<typeof watchPage>;


  before(async () => {
    [t, ldap] = await Promise.all([startTestApp(), startSlapd()]);
    tmp = mkdtempSync(join(tmpdir(), 'otpd-ui-users-'));
    const file = join(tmp, 'staff');
    writeFileSync(file, Array.from({ length: FILE_USERS }, (_, i) =>
      `user${num(i + 1)}:x:${2000 + i}:100:Staff Member${num(i + 1)},Room ${i},+49151234${String(5000 + i)},,u${num(i + 1)}@example.org:/home/u:/bin/sh`).join('\n'));
    for (const [path, form] of [
      ['/system/setResolver', {
        name: 'corpldap', type: 'ldapresolver', PRESET: 'openldap', LDAPURI: ldap.url, LDAPBASE: FIXTURE_BASE, BINDDN: FIXTURE_ADMIN_DN, BINDPW: FIXTURE_ADMIN_PW,
        EnforceTLS: 'False', TIMEOUT: '2', BLOCK_SECONDS: '0',
      }],
      ['/system/setResolver', { name: 'stafffile', type: 'passwdresolver', fileName: file }],
      ['/system/setRealm', { realm: 'corp', resolvers: 'corpldap' }],
      ['/system/setRealm', { realm: 'staff', resolvers: 'stafffile' }],
      ['/system/setDefaultRealm', { realm: 'corp' }],
      ['/admin/init', { type: 'hmac', serial: 'UIHOTP1', otpkey: KEY, user: 'alice', realm: 'corp', description: 'phone app' }],
      ['/admin/init', { type: 'hmac', serial: 'UIHOTP2', otpkey: KEY, user: 'alice', realm: 'corp', description: 'spare' }],
      ['/admin/disable', { serial: 'UIHOTP2' }],
    ] as const) {
      const res = await t.admin(path, form);
      assert.equal(res.json.result.status, true, `${path}: ${res.body}`);
    }
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    browser = await launchBrowser();
    context = await browser.newContext();
    page = await context.newPage();
    watch = watchPage(page);
    await logInToManage(page, base, 'admin', 'admin-password-1');
  });

  after(async () => {
    await context?.close();
    await browser?.close();
    await t?.close();
    await ldap?.dispose();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const rows = () => page.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => (tr as unknown as { innerText: string }).innerText));
  const caption = () => page.locator('table caption').innerText();

  test('the default realm is listed at once; search, sort, nothing found', async () => {
    await page.goto(`${base}/manage/users`);
    assert.equal(await page.locator('h1').innerText(), 'Users');
    assert.equal(await page.inputValue('#realm'), 'corp');
    assert.equal(await caption(), `Users of corp: 1–${FIXTURE_USERS.length} of ${FIXTURE_USERS.length}`);
    assert.match((await rows())[0]!, new RegExp(`^alice\\tAlice\\tAble\\t${ALICE.mail}\\t\\${ALICE.mobile}\\tcorpldap$`));
    await assertAccessible(page, 'user search');
    await screenshot(page, 'manage-users');

    // sorted by e-mail, descending: the header says so
    await page.click('th a:has-text("E-mail")');
    await page.click('th a:has-text("E-mail")');
    await page.waitForURL(/sort=email&dir=desc/);
    assert.equal(await page.getAttribute('th:has-text("E-mail")', 'aria-sort'), 'descending');
    assert.match((await rows())[0]!, /^o'brien\(x\)\*\t/, "obrien@… sorts last; the users without mail come first in ascending order");

    // a part of the login, non-ASCII; filter metacharacters are matched literally
    await page.fill('#username', 'jör');
    await page.click('button:has-text("Search")');
    await page.waitForURL(/username=j%C3%B6r/);
    assert.deepEqual((await rows()).map((r) => r.split('\t')[0]), ['jörg']);
    await page.fill('#username', "o'brien(x");
    await page.click('button:has-text("Search")');
    await page.waitForURL(/username=o%27brien/);
    assert.deepEqual((await rows()).map((r) => r.split('\t')[0]), ["o'brien(x)*"]);

    await page.fill('#username', '');
    await page.fill('#email', 'nobody.here');
    await page.click('button:has-text("Search")');
    await page.waitForURL(/email=nobody.here/);
    assert.match(await page.locator('.empty').innerText(), /^No user of corp matches — try fewer fields or \*/);
    assert.equal(await page.inputValue('#email'), 'nobody.here', 'the search stays in the form');
  });

  test('paging with counts over a realm of 120 users', async () => {
    await page.goto(`${base}/manage/users`);
    await page.selectOption('#realm', 'staff');
    await page.click('button:has-text("Search")');
    await page.waitForURL(/realm=staff/);
    assert.equal(await caption(), `Users of staff: 1–50 of ${FILE_USERS}`);
    assert.equal((await rows())[0]!.split('\t')[0], 'user001');
    await page.click('a[rel=next]');
    await page.waitForURL(/page=2/);
    assert.equal(await caption(), `Users of staff: 51–100 of ${FILE_USERS}`);
    assert.equal((await rows())[0]!.split('\t')[0], 'user051');
    assert.equal(await page.locator('.pager span').innerText(), 'Page 2 of 3');
    await page.click('a[rel=next]');
    await page.waitForURL(/page=3/);
    assert.equal(await caption(), `Users of staff: 101–120 of ${FILE_USERS}`);
    assert.equal(await page.locator('a[rel=next]').count(), 0);
    await page.click('a[rel=prev]');
    await page.waitForURL(/page=2/);
    assert.equal(await page.inputValue('#realm'), 'staff', 'the realm stays across pages');
  });

  test("a user's page: attributes and tokens linking to their pages", async () => {
    await page.goto(`${base}/manage/users`);
    await page.click('tbody a:has-text("alice")');
    await page.waitForURL(`${base}/manage/users/corp/alice`);
    assert.equal(await page.locator('h1').innerText(), 'User alice');
    const facts = await page.locator('dl.facts').innerText();
    assert.match(facts, /Realm\s+corp/);
    assert.match(facts, /User store\s+corpldap useridresolver\.LDAPIdResolver\.IdResolver\.corpldap/);
    assert.match(facts, new RegExp(`E-mail\\s+email\\s+${ALICE.mail}`));
    assert.match(facts, new RegExp(`Mobile\\s+mobile\\s+\\${ALICE.mobile}`));
    assert.equal(await page.locator('section[aria-labelledby=facts-h] .hint').count(), 0, 'mail and mobile present: no hint');
    assert.equal(await page.locator('section[aria-labelledby=tokens-h] caption').innerText(), '2 tokens');
    const tokens = await page.locator('section[aria-labelledby=tokens-h] tbody tr').evaluateAll((trs) => trs.map((tr) => (tr as unknown as { innerText: string }).innerText.split('\t').slice(0, 5).join('|')));
    assert.deepEqual(tokens, ['UIHOTP1|HMAC|enabled|phone app|0 of 10', 'UIHOTP2|HMAC|disabled|spare|0 of 10']);
    assert.equal(await page.getAttribute('a:has-text("UIHOTP1")', 'href'), '/manage/tokens/UIHOTP1');
    await assertAccessible(page, "a user's page");
    await screenshot(page, 'manage-user');
    await page.setViewportSize({ width: 390, height: 800 });
    await screenshot(page, 'manage-user-phone');
    await page.setViewportSize({ width: 1280, height: 800 });

    // no mobile number, no tokens: both said
    await page.goto(`${base}/manage/users/corp/bob`);
    assert.match(await page.locator('section[aria-labelledby=facts-h] .hint').innerText(), /^The user store gives no mobile number: SMS or e-mail tokens cannot be enrolled/);
    assert.match(await page.locator('section[aria-labelledby=tokens-h] .empty').innerText(), /^No tokens — enroll one/);

    // a login with filter metacharacters is its own page (the * is not a wildcard there)
    await page.goto(`${base}/manage/users/corp/${encodeURIComponent("o'brien(x)*")}`);
    assert.equal(await page.locator('h1').innerText(), "User o'brien(x)*");
    watch.assertClean('users pages');

    const unknown = await page.request.get(`${base}/manage/users/corp/nobody-at-all`);
    assert.equal(unknown.status(), 404);
    assert.match(await unknown.text(), /The realm corp has no user nobody-at-all\./);
    const star = await page.request.get(`${base}/manage/users/corp/${encodeURIComponent('*')}`);
    assert.equal(star.status(), 404, 'a pattern names no user');
    const noRealm = await page.request.get(`${base}/manage/users/nosuch/alice`);
    assert.equal(noRealm.status(), 404);
    assert.match(await noRealm.text(), /Unknown realm &#39;nosuch&#39;/);
  });

  test('a directory that cannot be asked is said on the page, never an empty list', async () => {
    await ldap.stop();
    try {
      await page.goto(`${base}/manage/users?realm=corp`);
      assert.match(await page.locator('.error-summary').innerText(), /^The users of corp cannot be listed: user store unavailable: corpldap: ldap:\/\/127\.0\.0\.1:\d+: connection refused 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
      assert.equal(await page.locator('table').count(), 0);
      await assertAccessible(page, 'users page, store down');
    } finally {
      await ldap.restart();
    }
    await page.goto(`${base}/manage/users?realm=corp`);
    assert.equal(await caption(), `Users of corp: 1–${FIXTURE_USERS.length} of ${FIXTURE_USERS.length}`);
  });

  test('an admin restricted to one realm cannot list or open the users of another', async () => {
    await t.services.admins.add('helpdesk', 'helpdesk-password-1');
    for (const form of [
      { name: 'admins', scope: 'admin', action: '*', user: 'admin', realm: '*' },
      { name: 'helpdesk', scope: 'admin', action: 'userlist, show', user: 'helpdesk', realm: 'staff' },
    ]) assert.equal((await t.admin('/system/setPolicy', form)).json.result.status, true);
    const other = await browser.newContext();
    const p = await other.newPage();
    await logInToManage(p, base, 'helpdesk', 'helpdesk-password-1');
    await p.goto(`${base}/manage/users?realm=staff`);
    assert.equal(await p.locator('table caption').innerText(), `Users of staff: 1–50 of ${FILE_USERS}`);
    await p.goto(`${base}/manage/users?realm=corp`);
    assert.match(await p.locator('.error-summary').innerText(), /cannot be listed: You do not have the administrative right for this realm/);
    assert.equal(await p.locator('table').count(), 0);
    assert.ok(!(await p.content()).includes(ALICE.mail!), 'no user of corp on the page');
    const alice = await p.request.get(`${base}/manage/users/corp/alice`);
    assert.equal(alice.status(), 404);
    assert.ok(!(await alice.text()).includes(ALICE.mail!));

    // without the system read right, the user stores and realms pages say so (never the configuration)
    assert.equal((await t.admin('/system/setPolicy', { name: 'sysadmins', scope: 'system', action: '*', user: 'admin', realm: '*' })).json.result.status, true);
    for (const path of ['/manage/resolvers', '/manage/resolvers/corpldap', '/manage/realms']) {
      const refused = await p.request.get(`${base}${path}`);
      assert.equal(refused.status(), 403, path);
      const body = await refused.text();
      assert.match(body, /<h1>Not allowed<\/h1>/, path);
      assert.match(body, /You do not have the administrative right to read/, path);
      assert.ok(!body.includes('corpldap</a>') && !body.includes(ldap.url), `${path} shows nothing of the configuration`);
    }
    await other.close();
  });
});
