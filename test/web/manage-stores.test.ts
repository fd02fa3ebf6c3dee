/**
 * User stores and realms in Chromium, through the UI only, against a real slapd: an LDAP
 * user store made with the OpenLDAP preset passes "Test connection" (steps, the user count,
 * the first user's attributes) and "Look up one user" (alice's mail and mobile) without the
 * typed bind password leaving its field, and is saved with it; a bad LDAP URI is refused next
 * to its field with the other values kept and nothing stored; EnforceTLS against a server
 * without StartTLS, a closed port, a wrong bind password and a silent server each get their
 * plain sentence next to the field to change; the bind password is write-only (placeholder,
 * kept when left empty); a realm is made with the store and made the default, refused names
 * and empty choices are said next to the field; deleting a store a realm uses is refused with
 * the API's message, an unused one is deleted after the question; the user is then found on
 * the Users page with mail and mobile. A SQLite store is mapped column by column; without
 * JavaScript the presets and the test are full pages that ask for the password again. Every page passes axe-core and leaves a screenshot.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { FIXTURE_ADMIN_DN, FIXTURE_ADMIN_PW, FIXTURE_BASE, FIXTURE_USERS, freePort, SLAPD_BIN, startSlapd, type Slapd } from '../fixtures/slapd.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { haveBinary } from '../helpers/require.ts';
import { assertAccessible, CHROMIUM, launchBrowser, screenshot, watchPage, logInToManage } from './browser.ts';

const skip = haveBinary(CHROMIUM, 'chromium') || haveBinary(SLAPD_BIN, 'slapd');
const ALICE = FIXTURE_USERS.find((u) => u.uid === 'alice')!;
/** Runs in the page: the focused element is one of these (the inline test moves the focus to its result). */
const focusIsOn = (ids: string[]) => ids.includes((globalThis as unknown as { document: { activeElement: { id: string } | null } }).document.activeElement?.id ?? '');

describe('user stores and realms in the browser', { skip }, () => {
  let t: TestApp;
  let ldap: Slapd;
  let browser: Browser;
  let base: string;
  let context: BrowserContext;
  let page: Page;
  let watch: ReturnType<typeof watchPage>;
  let tmp: string;

  before(async () => {
    [t, ldap] = await Promise.all([startTestApp(), startSlapd()]);
    tmp = mkdtempSync(join(tmpdir(), 'otpd-ui-stores-'));
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
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
    await t?.close();
    await ldap?.dispose();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const stored = async (name: string) => (await t.admin('/system/getResolver', { resolver: name })).json.result.value;
  const fieldError = (key: string) => page.locator(`#e-${key}`).innerText();

  /** The new OpenLDAP form, filled for the fixture slapd (EnforceTLS as given). */
  async function fillLdap(name: string, uri: string, enforceTls: boolean, password = FIXTURE_ADMIN_PW) {
    await page.goto(`${base}/manage/resolvers`);
    await page.click('a:has-text("OpenLDAP")');
    await page.waitForURL(`${base}/manage/resolvers/new/ldapresolver`);
    await page.fill('#f-name', name);
    await page.fill('#f-LDAPURI', uri);
    await page.fill('#f-LDAPBASE', FIXTURE_BASE);
    await page.fill('#f-BINDDN', FIXTURE_ADMIN_DN);
    await page.fill('#f-BINDPW', password);
    await page.setChecked('#f-EnforceTLS', enforceTls);
    await page.fill('#f-TIMEOUT', '2');
  }

  async function runTest(button: 'Test connection' | 'Look up one user') {
    await page.click(`button:has-text("${button}")`);
    await page.locator('#test-result').waitFor();
    await page.waitForFunction(focusIsOn, ['test-result', 'problems']);
  }

  test('the empty list says what to do next', async () => {
    await page.goto(`${base}/manage/resolvers`);
    assert.equal(await page.locator('h1').innerText(), 'User stores');
    assert.match(await page.locator('.empty').innerText(), /No user stores yet — add one above/);
    assert.equal(await page.locator('nav.side a[aria-current=page]').innerText(), 'User stores');
    await assertAccessible(page, 'empty user store list');
  });

  test('LDAP with the OpenLDAP preset: test connection, look up alice, save; the password stays write-only', async () => {
    await fillLdap('corpldap', ldap.url, false);
    // the preset filled the attribute mapping; the LinOTP key names stand beside the labels
    assert.equal(await page.inputValue('#f-LOGINNAMEATTRIBUTE'), 'uid');
    assert.equal(await page.inputValue('#f-USERINFO-email'), 'mail');
    assert.equal(await page.inputValue('#f-USERINFO-mobile'), 'mobile');
    assert.match(await page.locator('label[for=f-LDAPURI]').innerText(), /^Server URI \(required\) LDAPURI$/);
    await assertAccessible(page, 'new LDAP user store form');
    await screenshot(page, 'manage-store-form');
    await page.setViewportSize({ width: 390, height: 800 });
    await screenshot(page, 'manage-store-form-phone');
    await page.setViewportSize({ width: 1280, height: 800 });

    // the Active Directory preset replaces the mapping in place; OpenLDAP brings it back
    await page.click('button:has-text("Active Directory")');
    assert.equal(await page.inputValue('#f-LOGINNAMEATTRIBUTE'), 'sAMAccountName');
    assert.equal(await page.inputValue('#f-UIDTYPE'), 'objectGUID');
    assert.equal(await page.inputValue('#f-LDAPURI'), ldap.url, 'the connection stays');
    await page.click('button:has-text("OpenLDAP")');
    assert.equal(await page.inputValue('#f-LOGINNAMEATTRIBUTE'), 'uid');

    await runTest('Test connection');
    const result = page.locator('#test-result');
    assert.equal(await result.locator('.state').innerText(), 'Connection works');
    assert.match(await result.innerText(), new RegExp(`bound as ${FIXTURE_ADMIN_DN}`));
    assert.equal(await result.locator('.count').innerText(), `${FIXTURE_USERS.length} users found.`);
    assert.equal(await result.locator('h3').innerText(), 'First user found');
    assert.match(await result.locator('dl').innerText(), /Login name\s+username\s+\S+/);
    assert.equal(await page.inputValue('#f-BINDPW'), FIXTURE_ADMIN_PW, 'the typed password stays in its field');
    assert.equal(await page.locator('.field-note').count(), 0);

    await page.fill('#f-lookup', 'alice');
    await runTest('Look up one user');
    assert.equal(await result.locator('h3').innerText(), 'User alice');
    const attributes = await result.locator('dl').innerText();
    assert.match(attributes, new RegExp(`E-mail\\s+email\\s+${ALICE.mail}`));
    assert.match(attributes, new RegExp(`Mobile\\s+mobile\\s+\\${ALICE.mobile}`));
    await assertAccessible(page, 'test result');
    await screenshot(page, 'manage-store-test-result');

    await page.fill('#f-lookup', 'nobody-at-all');
    await page.press('#f-lookup', 'Enter');
    await page.locator('#test-result p:has-text("knows no user")').waitFor();
    assert.equal((await t.admin('/system/getResolvers')).json.result.value.corpldap, undefined, 'testing saves nothing');

    await page.click('button.primary:has-text("Save")');
    await page.waitForURL(`${base}/manage/resolvers`);
    assert.equal(await page.locator('.flash').innerText(), 'User store corpldap created. Next: put it in a realm.');
    const row = page.locator('tbody tr', { hasText: 'corpldap' });
    assert.match(await row.innerText(), /corpldap\tLDAP ldapresolver\tnone — put it in a realm/);
    await assertAccessible(page, 'user store list');
    await screenshot(page, 'manage-stores');

    const saved = await stored('corpldap');
    assert.equal(saved.data.LDAPURI, ldap.url);
    assert.equal(saved.data.EnforceTLS, 'False');
    assert.equal(saved.data.BINDPW, '__CENSORED__');
    assert.deepEqual(JSON.parse(saved.data.USERINFO), JSON.parse('{"username":"uid","phone":"telephoneNumber","mobile":"mobile","email":"mail","surname":"sn","givenname":"givenName"}'));
    assert.equal((await t.admin('/system/testResolver', { name: 'corpldap' })).json.result.value.result, 'success', 'the typed password was saved');

    // editing: the password is never shown; left empty, the stored one is kept
    await row.locator('a', { hasText: 'corpldap' }).click();
    await page.waitForURL(`${base}/manage/resolvers/corpldap`);
    assert.equal(await page.inputValue('#f-BINDPW'), '');
    assert.equal(await page.getAttribute('#f-BINDPW', 'placeholder'), 'set — leave empty to keep');
    assert.ok(!(await page.content()).includes(FIXTURE_ADMIN_PW), 'the page never holds the password');
    await runTest('Test connection');
    assert.equal(await page.locator('#test-result .state').innerText(), 'Connection works', 'an empty password field tests with the stored one');
    await page.click('summary:has-text("Limits")');
    await page.fill('#f-SIZELIMIT', '100');
    await page.click('button.primary:has-text("Save")');
    await page.waitForURL(`${base}/manage/resolvers`);
    assert.equal(await page.locator('.flash').innerText(), 'User store corpldap saved.');
    assert.equal((await stored('corpldap')).data.SIZELIMIT, '100');
    assert.equal((await t.admin('/system/testResolver', { name: 'corpldap' })).json.result.value.result, 'success', 'the stored password was kept');
  });

  test('a bad LDAP URI is refused next to its field; the other values stay; nothing is stored', async () => {
    await fillLdap('badldap', 'http://x', false);
    await page.click('button.primary:has-text("Save")');
    await page.locator('#e-LDAPURI').waitFor();
    assert.equal(await fieldError('LDAPURI'), 'http://x is not an LDAP address: write ldap://host:port or ldaps://host:port.');
    assert.equal(await page.getAttribute('#f-LDAPURI', 'aria-invalid'), 'true');
    assert.match(await page.locator('#problems').innerText(), /Server URI: http:\/\/x is not an LDAP address/);
    assert.equal(await page.inputValue('#f-name'), 'badldap');
    assert.equal(await page.inputValue('#f-LDAPURI'), 'http://x');
    assert.equal(await page.inputValue('#f-LDAPBASE'), FIXTURE_BASE);
    assert.equal(await page.inputValue('#f-BINDDN'), FIXTURE_ADMIN_DN);
    assert.equal(await page.inputValue('#f-TIMEOUT'), '2');
    assert.equal(await page.isChecked('#f-EnforceTLS'), false);
    assert.equal(await page.inputValue('#f-USERINFO-email'), 'mail');
    assert.equal(await page.inputValue('#f-BINDPW'), '', 'a typed password is never sent back');
    assert.match(await page.locator('#r-BINDPW').innerText(), /Type the password again/);
    assert.equal((await stored('badldap')).type, null, 'nothing stored');
    await assertAccessible(page, 'form with an error');
    await screenshot(page, 'manage-store-form-error');

    // the same through "Test connection": the refusal lands next to the field as well
    await page.fill('#f-BINDPW', FIXTURE_ADMIN_PW);
    await page.click('button:has-text("Test connection")');
    await page.waitForFunction(focusIsOn, ['problems']);
    assert.match(await fieldError('LDAPURI'), /http:\/\/x is not an LDAP address/);
    assert.equal(await page.inputValue('#f-BINDPW'), FIXTURE_ADMIN_PW);

    // a mapping's extra fields must be JSON: said next to that field, nothing sent
    await page.fill('#f-LDAPURI', ldap.url);
    await page.fill('#f-USERINFO-more', '{not json');
    await page.click('button.primary:has-text("Save")');
    await page.locator('#e-USERINFO-more').waitFor();
    assert.match(await fieldError('USERINFO-more'), /JSON object/);
    assert.equal((await stored('badldap')).type, null);
  });

  test('connection failures in plain words, next to the field to change', async () => {
    // the fixture slapd has no TLS: StartTLS (EnforceTLS on, the default) is refused
    await fillLdap('tlsldap', ldap.url, true);
    await runTest('Test connection');
    assert.equal(await page.locator('#test-result .state').innerText(), 'Connection failed');
    assert.match(await page.locator('#test-result .problems').innerText(), new RegExp(`^${ldap.url.replace(/[/.]/g, '\\$&')}: The server does not support StartTLS: use ldaps:// or set EnforceTLS off\\.`));
    assert.equal(await fieldError('EnforceTLS'), 'The server does not support StartTLS: use ldaps:// or set EnforceTLS off.');
    await screenshot(page, 'manage-store-test-starttls');

    // nothing listens on the port
    const closed = await freePort();
    await page.fill('#f-LDAPURI', `ldap://127.0.0.1:${closed}`);
    await page.setChecked('#f-EnforceTLS', false);
    await runTest('Test connection');
    assert.equal(await fieldError('LDAPURI'), `Cannot connect to 127.0.0.1:${closed} (connection refused).`);

    // a wrong service password
    await page.fill('#f-LDAPURI', ldap.url);
    await page.fill('#f-BINDPW', 'not-the-password');
    await runTest('Test connection');
    assert.equal(await fieldError('BINDPW'), 'Wrong bind DN or password.');

    // a server that accepts the connection and never answers
    const sockets: Socket[] = [];
    const silent: Server = createServer((s) => void sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      await page.fill('#f-LDAPURI', `ldap://127.0.0.1:${(silent.address() as AddressInfo).port}`);
      await page.fill('#f-TIMEOUT', '1');
      await runTest('Test connection');
      assert.match(await fieldError('TIMEOUT'), /^Timed out after 1 s (waiting for an answer from|connecting to) 127\.0\.0\.1:\d+\.$/);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
    assert.equal((await stored('tlsldap')).type, null, 'tests store nothing');
  });

  test('SQL (SQLite): the column mapping, a missing table in plain words, then a working test', async () => {
    const dbFile = join(tmp, 'people.db');
    const db = new Database(dbFile);
    db.exec("create table staff (id integer primary key, login text, pw text, mail text, mobile text)");
    db.prepare('insert into staff (login, pw, mail, mobile) values (?, ?, ?, ?)').run('erin', '', 'erin@example.org', '+4915123456789');
    db.prepare('insert into staff (login, pw, mail, mobile) values (?, ?, ?, ?)').run('frank', '', 'frank@example.org', '+12015550123');
    db.close();
    await page.goto(`${base}/manage/resolvers`);
    await page.click('a:has-text("SQL database")');
    await page.waitForURL(`${base}/manage/resolvers/new/sqlresolver`);
    await page.fill('#f-name', 'sqlpeople');
    await page.fill('#f-Connect', `sqlite:///${dbFile}`);
    await page.fill('#f-Table', 'people');
    for (const [field, column] of [['userid', 'id'], ['username', 'login'], ['password', 'pw'], ['email', 'mail'], ['mobile', 'mobile']]) await page.fill(`#f-Map-${field}`, column!);
    await assertAccessible(page, 'new SQL user store form');
    await runTest('Test connection');
    assert.equal(await page.locator('#test-result .state').innerText(), 'Connection failed');
    assert.equal(await fieldError('Table'), 'The table does not exist.');
    await page.fill('#f-Table', 'staff');
    await page.fill('#f-lookup', 'frank');
    await runTest('Look up one user');
    assert.equal(await page.locator('#test-result .count').innerText(), '2 users found.');
    assert.match(await page.locator('#test-result dl').innerText(), /E-mail\s+email\s+frank@example\.org\s+Mobile\s+mobile\s+\+12015550123/);
    await page.click('button.primary:has-text("Save")');
    await page.waitForURL(`${base}/manage/resolvers`);
    assert.match(await page.locator('tbody tr', { hasText: 'sqlpeople' }).innerText(), /sqlpeople\tSQL sqlresolver\t/);
    assert.deepEqual(JSON.parse((await stored('sqlpeople')).data.Map), { userid: 'id', username: 'login', password: 'pw', email: 'mail', mobile: 'mobile' });
  });

  test('without JavaScript: presets and the connection test work as full pages; the password is asked again', async () => {
    const plain = await browser.newContext({ javaScriptEnabled: false });
    const p = await plain.newPage();
    await logInToManage(p, base);
    await p.goto(`${base}/manage/resolvers/new/ldapresolver`);
    await p.fill('#f-name', 'nojsldap');
    await p.fill('#f-LDAPURI', ldap.url);
    await p.fill('#f-LDAPBASE', FIXTURE_BASE);
    await p.click('button:has-text("Active Directory")');
    await p.waitForLoadState();
    assert.equal(await p.inputValue('#f-LOGINNAMEATTRIBUTE'), 'sAMAccountName', 'the server filled the preset in');
    assert.equal(await p.inputValue('#f-LDAPURI'), ldap.url, 'and kept what was typed');
    await p.click('button:has-text("OpenLDAP")');
    await p.waitForLoadState();
    await p.fill('#f-BINDDN', FIXTURE_ADMIN_DN);
    await p.fill('#f-BINDPW', FIXTURE_ADMIN_PW);
    await p.setChecked('#f-EnforceTLS', false);
    await p.click('button:has-text("Test connection")');
    await p.locator('#test-result').waitFor();
    assert.equal(await p.locator('#test-result .state').innerText(), 'Connection works');
    assert.match(await p.locator('p.notice').innerText(), /^Connection test: works — see the result\. Nothing is saved until you press Save\.$/);
    assert.equal(await p.inputValue('#f-BINDPW'), '', 'the password is not sent back');
    assert.match(await p.locator('#r-BINDPW').innerText(), /Type the password again before saving/);
    assert.equal((await stored('nojsldap')).type, null);
    await plain.close();
  });

  test('realms: create with the store, refusals next to the field, make it the default', async () => {
    await page.goto(`${base}/manage/realms`);
    assert.match(await page.locator('.empty').innerText(), /No realms yet — create one below/);
    // refused: a bad name, then no user store chosen
    await page.fill('#f-realm', 'Bad Name!');
    await page.check('#use-corpldap');
    await page.click('button:has-text("Create realm")');
    await page.locator('#e-realm').waitFor();
    assert.equal(await page.locator('#e-realm').innerText(), 'A realm name has 1 to 64 characters: a-z, 0-9, _ . and -.');
    assert.equal(await page.inputValue('#f-realm'), 'Bad Name!');
    assert.equal(await page.isChecked('#use-corpldap'), true, 'the choice is kept');
    await page.fill('#f-realm', 'corp');
    await page.uncheck('#use-corpldap');
    await page.click('button:has-text("Create realm")');
    await page.locator('#e-resolvers').waitFor();
    assert.equal(await page.locator('#e-resolvers').innerText(), 'Choose at least one user store.');
    assert.deepEqual((await t.admin('/system/getRealms')).json.result.value, {}, 'nothing created');

    await page.check('#use-corpldap');
    await page.click('button:has-text("Create realm")');
    await page.waitForURL(`${base}/manage/realms`);
    assert.equal(await page.locator('.flash').innerText(), 'Realm corp created with corpldap.');
    await page.click('button:has-text("Make corp the default")');
    await page.waitForURL(`${base}/manage/realms`);
    assert.equal(await page.locator('.flash').innerText(), 'Realm corp is now the default realm.');
    assert.match(await page.locator('tbody tr', { hasText: 'corp' }).innerText(), /corp\tcorpldap\tdefault/);
    await assertAccessible(page, 'realm list');
    await screenshot(page, 'manage-realms');
    const realms = (await t.admin('/system/getRealms')).json.result.value;
    assert.deepEqual(realms.corp.useridresolver, ['useridresolver.LDAPIdResolver.IdResolver.corpldap']);
    assert.equal(realms.corp.default, 'true');

    // a realm of its own: its page, its user stores, and the list of stores shows who uses what
    await page.click('tbody a:has-text("corp")');
    await page.waitForURL(`${base}/manage/realms/corp`);
    assert.equal(await page.locator('h1').innerText(), 'Realm corp');
    assert.equal(await page.isChecked('#use-corpldap'), true);
    await assertAccessible(page, 'realm page');
    await screenshot(page, 'manage-realm');
    // a second store, asked first: the order numbers decide
    await page.check('#use-sqlpeople');
    await page.fill('#pos-sqlpeople', '1');
    await page.fill('#pos-corpldap', '2');
    await page.click('button.primary:has-text("Save")');
    await page.waitForURL(`${base}/manage/realms`);
    assert.equal(await page.locator('.flash').innerText(), 'Realm corp saved: sqlpeople, corpldap.');
    assert.deepEqual((await t.admin('/system/getRealms')).json.result.value.corp.useridresolver,
      ['useridresolver.SQLIdResolver.IdResolver.sqlpeople', 'useridresolver.LDAPIdResolver.IdResolver.corpldap']);
    await page.goto(`${base}/manage/realms/corp`);
    assert.deepEqual(await page.locator('.choice input[type=checkbox]').evaluateAll((els) => els.map((e) => (e as unknown as { id: string }).id)), ['use-sqlpeople', 'use-corpldap'], 'shown in lookup order');
    await page.uncheck('#use-sqlpeople');
    await page.click('button.primary:has-text("Save")');
    await page.waitForURL(`${base}/manage/realms`);
    assert.equal(await page.locator('.flash').innerText(), 'Realm corp saved: corpldap.');
    await page.goto(`${base}/manage/resolvers`);
    assert.match(await page.locator('tbody tr', { hasText: 'corpldap' }).innerText(), /\tcorp$/);
  });

  test('deleting a user store a realm uses is refused with the API message; an unused one is deleted after the question', async () => {
    await page.goto(`${base}/manage/resolvers/corpldap`);
    assert.match(await page.locator('.danger-zone').innerText(), /Used by the realms corp/);
    await page.click('button.danger:has-text("Delete user store corpldap")');
    await page.locator('#problems').waitFor();
    assert.equal(await page.locator('#problems li').innerText(), "Not deleted: Resolver 'corpldap' still in use by the realms: 'corp'");
    assert.equal((await stored('corpldap')).type, 'ldapresolver', 'still there');
    await screenshot(page, 'manage-store-delete-refused');

    // a flat-file store in no realm; without JavaScript the question is a page of its own
    await page.goto(`${base}/manage/resolvers/new/passwdresolver`);
    await page.fill('#f-name', 'spare-file');
    await page.fill('#f-fileName', '/etc/passwd');
    await page.click('button.primary:has-text("Save")');
    await page.waitForURL(`${base}/manage/resolvers`);
    const csrf = await page.locator('form.logout input[name=csrf_token]').inputValue();
    const ask = await page.request.post(`${base}/manage/resolvers/spare-file/delete`, { form: { csrf_token: csrf } });
    assert.equal(ask.status(), 200);
    assert.match(await ask.text(), /<h1>Delete user store spare-file\?<\/h1>/);
    assert.equal((await stored('spare-file')).type, 'passwdresolver', 'asking deletes nothing');
    // renamed on its page, then deleted after the question
    await page.goto(`${base}/manage/resolvers/spare-file`);
    await page.fill('#f-name', 'spare-file2');
    await page.click('button.primary:has-text("Save")');
    await page.waitForURL(`${base}/manage/resolvers`);
    assert.equal(await page.locator('.flash').innerText(), 'User store spare-file renamed to spare-file2 and saved.');
    assert.equal((await stored('spare-file')).type, null);
    await page.goto(`${base}/manage/resolvers/spare-file2`);
    await page.click('button.danger:has-text("Delete user store spare-file2")');
    await page.waitForURL(`${base}/manage/resolvers`);
    assert.equal(await page.locator('.flash').innerText(), 'User store spare-file2 deleted.');
    assert.equal((await stored('spare-file2')).type, null);
  });

  test('the user is found on the Users page with mail and mobile', async () => {
    await page.click('nav.side a:has-text("Users")');
    await page.waitForURL(`${base}/manage/users`);
    assert.equal(await page.inputValue('#realm'), 'corp', 'the default realm is chosen');
    await page.fill('#username', 'ali');
    await page.click('button:has-text("Search")');
    await page.waitForURL(/\/manage\/users\?realm=corp&username=ali/);
    const rows = page.locator('tbody tr');
    assert.equal(await rows.count(), 1);
    assert.match(await rows.first().innerText(), new RegExp(`^alice\\tAlice\\tAble\\t${ALICE.mail}\\t\\${ALICE.mobile}\\tcorpldap$`));
    await rows.first().locator('a').click();
    await page.waitForURL(`${base}/manage/users/corp/alice`);
    const facts = await page.locator('dl.facts').innerText();
    assert.match(facts, new RegExp(`E-mail\\s+email\\s+${ALICE.mail}`));
    assert.match(facts, new RegExp(`Mobile\\s+mobile\\s+\\${ALICE.mobile}`));
    watch.assertClean('user stores, realms and users');
  });
});
