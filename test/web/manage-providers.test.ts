/**
 * Providers and the delivery log in Chromium, through the UI only, against real servers on
 * loopback: an SMTP e-mail provider (a real SMTP server with AUTH) is created from its
 * schema-built form, made the default with the list's button, and its test message arrives at
 * the server; its password is write-only (not in the HTML, kept when the field is left empty,
 * the mail server still accepts the login after an edit). An HTTP SMS provider: bad JSON in
 * HEADERS is said next to HEADERS before anything is sent, a missing URL is refused by
 * /system/setProvider and said next to the URL field with every other input kept and nothing
 * stored; saved, its test message reaches the gateway with the provider's message id shown; a
 * number otpd cannot use is said next to "Send to". A provider on a closed port and a gateway
 * answering 500 fail their test messages; both failures are in the delivery log page with their
 * errors (a code sent along a failover chain shows both attempts), and its filters (status,
 * channel, user, realm, serial, times), order and paging with counts work. Health and the failover order
 * of an sms_provider policy are on the list; deleting a provider a policy names is refused with
 * the API's message, an unused one is deleted (with a confirm page when JavaScript is off). Every
 * form kind, the test result and the log pass axe-core and leave a screenshot.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { freePort } from '../fixtures/slapd.ts';
import { HttpGateway } from '../fixtures/http-gateway.ts';
import { SmtpSink } from '../fixtures/smtp-sink.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { haveBinary } from '../helpers/require.ts';
import { assertAccessible, CHROMIUM, launchBrowser, screenshot, watchPage, logInToManage } from './browser.ts';

const skip = haveBinary(CHROMIUM, 'chromium');
const MAIL_USER = 'otpd-mailer';
const MAIL_PASSWORD = 'smtpAuth-Pw-4711';
const GW_PASSWORD = 'gwBasic-Pw-0815';
const CLASSES = ['HttpSMSProvider', 'RestSMSProvider', 'SmtpSMSProvider', 'SMPPSMSProvider', 'DeviceSMSProvider', 'SMTPEmailProvider'];

describe('providers and the delivery log in the browser', { skip }, () => {
  let t: TestApp;
  let smtp: SmtpSink;
  let gw: HttpGateway;
  let broken: HttpGateway;
  let closedPort: number;
  let browser: Browser;
  let base: string;
  let context: BrowserContext;
  let page: Page;
  let watch: ReturnType<typeof watchPage>;


  before(async () => {
    t = await startTestApp();
    smtp = await new SmtpSink({ auth: { user: MAIL_USER, password: MAIL_PASSWORD } }).start();
    gw = await new HttpGateway({ auth: { type: 'basic', user: 'otpd', password: GW_PASSWORD }, respond: () => ({ body: 'OK', headers: { 'X-Message-Id': 'gw-msg-77' } }) }).start();
    broken = await new HttpGateway({ respond: () => ({ status: 500, body: 'gateway down' }) }).start();
    closedPort = await freePort();
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
    await smtp?.stop();
    await gw?.stop();
    await broken?.stop();
  });

  const providers = async (type: 'sms' | 'email') => (await t.admin('/system/getProvider', { type })).json.result.value;
  const fieldError = (id: string) => page.locator(`#e-${id}`).innerText();

  /** Opens a class's new-provider form from the list's buttons. */
  async function openNew(className: string) {
    await page.goto(`${base}/manage/providers`);
    await page.click(`a[href="/manage/providers/new/${className}"]`);
    await page.waitForURL(`${base}/manage/providers/new/${className}`);
  }

  async function sendTest(to: string) {
    await page.fill('#t-to', to);
    await page.click('button:has-text("Send a test message")');
    await page.waitForLoadState('load');
  }

  test('the empty list says what to do next; every class has a form built from its schema', async () => {
    await page.goto(`${base}/manage/providers`);
    assert.equal(await page.locator('h1').innerText(), 'Providers');
    assert.match(await page.locator('.empty').first().innerText(), /No providers yet — add one above/);
    assert.equal(await page.locator('nav.side a[aria-current=page]').innerText(), 'Providers');
    await assertAccessible(page, 'empty provider list');
    await screenshot(page, 'manage-providers-empty');
    const defs = (await t.admin('/system/getProviderDef')).json.result.value;
    for (const className of CLASSES) {
      await openNew(className);
      // a field for every key of the schema, required ones marked, secrets as password fields
      const schema = defs[className].schema;
      for (const [key, node] of Object.entries<{ secret?: boolean; default?: unknown; type?: string; anyOf?: { type?: string; pattern?: string; const?: unknown }[] }>(schema.properties)) {
        const input = page.locator(`#f-${key}`);
        assert.equal(await input.count(), 1, `${className}: no field for ${key}`);
        if (node.secret) assert.equal(await input.getAttribute('type'), 'password', `${className}.${key} is write-only`);
        // BoolLike (true/false, also written as "yes", "on", …) is a checkbox; a choice of constants a select
        const branches = node.anyOf ?? [];
        if (branches.some((b) => b.type === 'boolean') && branches.every((b) => b.type === 'boolean' || /TRUE/.test(b.pattern ?? ''))) {
          assert.equal(await input.getAttribute('type'), 'checkbox', `${className}.${key} is yes/no`);
        }
        if (branches.length > 1 && branches.every((b) => 'const' in b)) assert.equal(await input.evaluate((el) => el.tagName), 'SELECT', `${className}.${key}`);
        if (node.type === 'object') assert.equal(await input.evaluate((el) => el.tagName), 'TEXTAREA', `${className}.${key} is JSON`);
        const label = (await page.locator(`label[for="f-${key}"]`).textContent() ?? '').replace(/\s+/g, ' ').trim();
        assert.ok(label.endsWith(key), `${className}.${key}: the LinOTP key stands beside the label (${label})`);
        if ((schema.required ?? []).includes(key) && node.default === undefined) assert.match(label, /\(required\)/, `${className}.${key}`);
      }
      await assertAccessible(page, `new ${className} form`);
      await screenshot(page, `manage-provider-form-${className}`);
    }
    await page.setViewportSize({ width: 390, height: 800 });
    await screenshot(page, 'manage-provider-form-phone');
    await page.setViewportSize({ width: 1280, height: 800 });
    watch.assertClean('empty list and forms');
  });

  test('SMTP e-mail provider through the UI: created, made default, test mail arrives; the password stays write-only', async () => {
    // a first provider on a closed port becomes the default by itself
    await openNew('SMTPEmailProvider');
    await page.fill('#p-name', 'backup');
    await page.fill('#f-SMTP_SERVER', '127.0.0.1');
    await page.fill('#f-SMTP_PORT', String(closedPort));
    assert.equal(await page.isChecked('#p-default'), true, 'the first e-mail provider is proposed as the default');
    await page.click('button.primary:has-text("Save")');
    await page.waitForURL(`${base}/manage/providers/email/backup`);
    assert.equal(await page.locator('.flash').innerText(), 'E-mail provider backup created. Send a test message below to try it.');

    await openNew('SMTPEmailProvider');
    assert.equal(await page.isChecked('#p-default'), false);
    await page.fill('#p-name', 'mail');
    await page.fill('#f-SMTP_SERVER', '127.0.0.1');
    await page.fill('#f-SMTP_PORT', String(smtp.port));
    await page.fill('#f-SMTP_USER', MAIL_USER);
    await page.fill('#f-SMTP_PASSWORD', MAIL_PASSWORD);
    await page.fill('#f-EMAIL_FROM', 'otpd@example.org');
    await page.fill('#f-EMAIL_SUBJECT', 'Your otpd code');
    await page.click('button.primary:has-text("Save")');
    await page.waitForURL(`${base}/manage/providers/email/mail`);
    const stored = await providers('email');
    assert.deepEqual(JSON.parse(stored.mail.Config), { SMTP_SERVER: '127.0.0.1', SMTP_PORT: smtp.port, SMTP_USER: MAIL_USER, SMTP_PASSWORD: '__CENSORED__', EMAIL_FROM: 'otpd@example.org', EMAIL_SUBJECT: 'Your otpd code' });
    assert.deepEqual([stored.backup.Default, stored.mail.Default], [true, false]);

    // made the default with the list's button
    await page.goto(`${base}/manage/providers`);
    await page.click('button:has-text("Make mail the default")');
    await page.waitForURL(`${base}/manage/providers`);
    assert.equal(await page.locator('.flash').innerText(), 'mail is now the default e-mail provider.');
    assert.match(await page.locator('tbody tr', { hasText: 'mail' }).first().innerText(), /default/);
    assert.deepEqual(Object.fromEntries(Object.entries(await providers('email')).map(([n, p]: [string, any]) => [n, p.Default])), { backup: false, mail: true });

    // the test message reaches the SMTP server, logged in with the stored password
    await page.click('a[href="/manage/providers/email/mail"]');
    await sendTest('alice@example.org');
    const result = page.locator('#test-result');
    assert.equal(await result.locator('.state').innerText(), 'Accepted');
    const mails = await smtp.waitFor(1);
    assert.deepEqual(mails[0]!.to, ['alice@example.org']);
    assert.equal(mails[0]!.user, MAIL_USER);
    assert.match(mails[0]!.raw, /Subject: otpd test message/);
    await assertAccessible(page, 'test result');
    await screenshot(page, 'manage-provider-test-result');

    // write-only: not in the HTML; left empty on an edit, the stored one is kept and still works
    assert.ok(!(await page.content()).includes(MAIL_PASSWORD), 'the SMTP password is not in the page');
    assert.equal(await page.inputValue('#f-SMTP_PASSWORD'), '');
    assert.equal(await page.getAttribute('#f-SMTP_PASSWORD', 'placeholder'), 'set — leave empty to keep');
    assert.equal(await page.inputValue('#f-SMTP_USER'), MAIL_USER);
    await page.fill('#f-EMAIL_SUBJECT', 'Your code');
    await page.click('button.primary:has-text("Save")');
    await page.waitForURL(`${base}/manage/providers/email/mail`);
    assert.equal(await page.locator('.flash').innerText(), 'E-mail provider mail saved.');
    assert.equal(JSON.parse((await providers('email')).mail.Config).EMAIL_SUBJECT, 'Your code');
    await sendTest('bob@example.org');
    assert.equal(await page.locator('#test-result .state').innerText(), 'Accepted');
    assert.equal((await smtp.waitFor(2))[1]!.user, MAIL_USER, 'the kept password still logs in');

    // the provider on the closed port fails its test, with the reason
    await page.goto(`${base}/manage/providers/email/backup`);
    await sendTest('carol@example.org');
    assert.equal(await page.locator('#test-result .state').innerText(), 'Failed');
    assert.match(await page.locator('#test-result').innerText(), /Error\s+transient: .*ECONNREFUSED/);
    watch.assertClean('SMTP provider');
  });

  test('HTTP SMS provider: bad JSON and a missing URL are said next to their fields, the input kept; then saved and tested', async () => {
    await openNew('HttpSMSProvider');
    await page.fill('#p-name', 'gw');
    await page.fill('#p-timeout', '3');
    await page.fill('#f-USERNAME', 'otpd');
    await page.fill('#f-PASSWORD', GW_PASSWORD);
    await page.fill('#f-RETURN_SUCCESS', 'OK');
    await page.click('details.advanced summary');
    await page.fill('#f-HEADERS', "{'X-Tenant': 'acme'}");
    await page.click('button.primary:has-text("Save")');
    assert.match(await fieldError('HEADERS'), /^Not valid JSON: .*\(line 1, column 2\)\. Use double quotes/);
    assert.equal(await page.locator('#f-HEADERS').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.locator('details.advanced').getAttribute('open'), '', 'the folded group opens on its error');

    await page.fill('#f-HEADERS', '{"X-Tenant": "acme"}');
    await page.fill('#f-PASSWORD', GW_PASSWORD);
    await page.click('button.primary:has-text("Save")');
    await page.locator('#e-URL').waitFor();
    assert.equal(await fieldError('URL'), 'Required.');
    assert.match(await page.locator('#problems').innerText(), /Gateway URL: Required\. \(providers\.sms\.gw\.config\.URL: required\)/);
    // everything typed is kept, the password is asked for again
    assert.equal(await page.inputValue('#p-name'), 'gw');
    assert.equal(await page.inputValue('#p-timeout'), '3');
    assert.equal(await page.inputValue('#f-USERNAME'), 'otpd');
    assert.equal(await page.inputValue('#f-RETURN_SUCCESS'), 'OK');
    assert.equal(await page.inputValue('#f-HEADERS'), '{"X-Tenant": "acme"}');
    assert.ok(!(await page.content()).includes(GW_PASSWORD), 'a typed password is never sent back');
    assert.match(await page.locator('#r-PASSWORD').innerText(), /Type the password again/);
    assert.deepEqual(await providers('sms'), {}, 'nothing stored');
    await assertAccessible(page, 'refused HTTP provider form');
    await screenshot(page, 'manage-provider-form-error');

    await page.fill('#f-URL', `${gw.url}/send`);
    await page.fill('#f-PASSWORD', GW_PASSWORD);
    await page.click('button.primary:has-text("Save")');
    await page.waitForURL(`${base}/manage/providers/sms/gw`);
    assert.deepEqual(JSON.parse((await providers('sms')).gw.Config), { URL: `${gw.url}/send`, USERNAME: 'otpd', PASSWORD: '__CENSORED__', HEADERS: { 'X-Tenant': 'acme' }, RETURN_SUCCESS: 'OK' });
    assert.ok(!(await page.content()).includes(GW_PASSWORD));

    // a number otpd cannot use is said next to "Send to"; a good one reaches the gateway
    await sendTest('call me');
    assert.match(await fieldError('t-to'), /./);
    assert.equal(await page.inputValue('#t-to'), 'call me');
    await sendTest('+4915123456789');
    assert.equal(await page.locator('#test-result .state').innerText(), 'Accepted');
    assert.match(await page.locator('#test-result').innerText(), /Provider message id\s+gw-msg-77/);
    const req = gw.requests.at(-1)!;
    assert.deepEqual([req.authUser, req.body.phone, req.headers['x-tenant']], ['otpd', '+4915123456789', 'acme']);

    // a gateway answering 500 fails the test with its reason
    await openNew('HttpSMSProvider');
    await page.fill('#p-name', 'flaky');
    await page.fill('#f-URL', `${broken.url}/send`);
    await page.click('button.primary:has-text("Save")');
    await page.waitForURL(`${base}/manage/providers/sms/flaky`);
    await sendTest('+12015550123');
    assert.equal(await page.locator('#test-result .state').innerText(), 'Failed');
    assert.match(await page.locator('#test-result').innerText(), /Error\s+transient: .*500/);
    watch.assertClean('HTTP provider');
  });

  test('the list shows health, the default per channel and the failover order; a provider a policy uses is not deleted', async () => {
    const pol = await t.admin('/system/setPolicy', { name: 'smsroute', scope: 'authentication', action: 'sms_provider=flaky gw ghost', realm: '*', user: '*', client: '' });
    assert.equal(pol.json.result.status, true, pol.body);
    // a code sent along the chain, as a login's challenge sends it: flaky answers 500 and backs off, gw takes it
    const delivery = t.services.delivery;
    const { id } = await t.services.db.kysely.transaction().execute((trx) =>
      delivery.enqueue(trx, { channel: 'sms', to: '+4915123456789', text: 'Your code 123456', user: 'alice', realm: 'corp', serial: 'LSSM0001' }, { providers: ['flaky', 'gw'], idempotencyKey: 'ui-chain-1', expiresAt: Date.now() + 120_000 }));
    assert.equal((await delivery.dispatchAndWait(id, 10_000)).status, 'accepted');

    await page.goto(`${base}/manage/providers`);
    const row = (name: string) => page.locator('tbody tr', { has: page.locator(`a:text-is("${name}")`) });
    assert.match(await row('gw').innerText(), /^gw\tSMS\tHTTP SMS gateway HttpSMSProvider\thealthy\tdefault\tsmsroute$/);
    assert.ok(Date.parse((await row('flaky').locator('time').getAttribute('datetime'))!) > Date.now(), 'the back-off ends later');
    assert.match(await row('flaky').innerText(), /\tbacking off until [^\n]+\n1 failure in a row; skipped until the back-off ends\. Last error: .*500.*\tMake flaky the default\tsmsroute$/);
    assert.match(await page.locator('table.providers caption').innerText(), /1–4 of 4/);
    const failover = page.locator('section[aria-labelledby=failover-h]');
    assert.match(await failover.innerText(), /Default SMS provider: gw\./);
    assert.match(await failover.innerText(), /Default e-mail provider: mail\./);
    assert.deepEqual(await failover.locator('ol.chain li').allInnerTexts(), ['flaky', 'gw', 'ghost (no such provider)']);
    await assertAccessible(page, 'provider list');
    await screenshot(page, 'manage-providers');
    await page.setViewportSize({ width: 390, height: 800 });
    await screenshot(page, 'manage-providers-phone');
    await page.setViewportSize({ width: 1280, height: 800 });

    // the filter keeps one channel
    await page.selectOption('#type', 'email');
    await page.click('form.filters button');
    await page.waitForURL(/type=email/);
    assert.deepEqual(await page.locator('table.providers tbody td:first-child').allInnerTexts(), ['backup', 'mail']);

    await page.goto(`${base}/manage/providers/sms/flaky`);
    assert.match(await page.locator('.danger-zone').innerText(), /Used by the policies smsroute/);
    await page.click('button.danger');
    await page.locator('#problems').waitFor();
    assert.match(await page.locator('#problems').innerText(), /Not deleted: Unable to delete - provider used in policies! \[smsroute\]/);
    assert.ok('flaky' in (await providers('sms')));
    await t.admin('/system/delPolicy', { name: 'smsroute' });
    watch.assertClean('list and refused delete');
  });

  test('without JavaScript a delete asks on a page of its own; then the provider is gone', async () => {
    // the confirm page, checked with axe where scripts run (the form's scripted "confirmed" taken out)
    await page.goto(`${base}/manage/providers/email/backup`);
    await page.locator('form[data-js-confirmed] input[name=confirmed]').evaluate((el) => el.remove());
    await page.click('button.danger');
    await page.waitForURL(`${base}/manage/providers/email/backup/delete`);
    assert.equal(await page.locator('h1').innerText(), 'Delete e-mail provider backup?');
    await assertAccessible(page, 'delete confirmation');
    const plain = await browser.newContext({ javaScriptEnabled: false });
    const p = await plain.newPage();
    const plainWatch = watchPage(p);
    try {
      await logInToManage(p, base);
      await p.goto(`${base}/manage/providers/email/backup`);
      await p.click('button.danger');
      await p.waitForURL(`${base}/manage/providers/email/backup/delete`);
      assert.equal(await p.locator('h1').innerText(), 'Delete e-mail provider backup?');
      assert.ok('backup' in (await providers('email')), 'nothing deleted before the answer');
      await screenshot(p, 'manage-provider-delete');
      await p.click('button.danger');
      await p.waitForURL(`${base}/manage/providers`);
      assert.equal(await p.locator('.flash').innerText(), 'E-mail provider backup deleted.');
      assert.deepEqual(Object.keys(await providers('email')), ['mail']);
      plainWatch.assertClean('delete without JavaScript');
    } finally {
      await plain.close();
    }
  });

  test('the delivery log shows the failed deliveries with their errors; filters, times and order work', async () => {
    await page.goto(`${base}/manage/delivery`);
    assert.equal(await page.locator('h1').innerText(), 'Delivery log');
    assert.equal(await page.locator('nav.side a[aria-current=page]').innerText(), 'Delivery log');
    const rows = page.locator('table.delivery-log tbody tr');
    // newest first: the code sent along the chain, then the test messages: flaky (500), gw, backup (closed port), mail twice
    assert.equal(await rows.count(), 6);
    assert.equal(await page.locator('table.delivery-log caption').innerText(), 'Messages 1–6 of 6');
    const cells = async (i: number) => (await rows.nth(i).locator('td').allInnerTexts()).map((s) => s.trim());
    const chain = await cells(0);
    assert.deepEqual([chain[1], chain[3], chain[4], chain[8]], ['SMS', 'accepted', 'gw', 'alice@corp\nLSSM0001']);
    await rows.nth(0).locator('details summary').click();
    assert.deepEqual(await rows.nth(0).locator('ol.attempts li').allInnerTexts(), [
      await rows.nth(0).locator('ol.attempts li').nth(0).innerText().then((x) => { assert.match(x, /^flaky: transient — .*500/); return x; }),
      'gw: accepted (gw-msg-77)',
    ]);
    const [flaky, gwRow, backup] = [await cells(1), await cells(2), await cells(3)];
    assert.deepEqual([flaky[1], flaky[2], flaky[3], flaky[4]], ['SMS', '+1201*****23', 'failed', 'flaky']);
    assert.match(flaky[6]!, /transient: .*500/);
    assert.deepEqual([gwRow[3], gwRow[4], gwRow[5]], ['accepted', 'gw', 'gw-msg-77']);
    assert.deepEqual([backup[1], backup[3], backup[4]], ['E-mail', 'failed', 'backup']);
    assert.match(backup[6]!, /ECONNREFUSED/);
    await assertAccessible(page, 'delivery log');
    await screenshot(page, 'manage-delivery-log');

    await page.selectOption('#status', 'failed');
    await page.click('form.filters button');
    await page.waitForURL(/status=failed/);
    assert.deepEqual(await page.locator('table.delivery-log tbody td:nth-child(5)').allInnerTexts(), ['flaky', 'backup']);
    await page.selectOption('#channel', 'email');
    await page.click('form.filters button');
    await page.waitForURL(/channel=email/);
    assert.deepEqual(await page.locator('table.delivery-log tbody td:nth-child(5)').allInnerTexts(), ['backup']);
    assert.equal(await page.locator('select#status').inputValue(), 'failed', 'the filters stay filled in');

    // times are UTC; one the API cannot read is said next to its field
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    await page.goto(`${base}/manage/delivery?since=${tomorrow}`);
    assert.match(await page.locator('.empty').innerText(), /No message matches these filters/);
    await page.goto(`${base}/manage/delivery?until=${tomorrow}`);
    assert.equal(await rows.count(), 6);
    await page.fill('#since', 'last tuesday');
    await page.click('form.filters button');
    await page.locator('#e-since').waitFor();
    assert.match(await page.locator('#e-since').innerText(), /Write a date such as 2026-01-31/);
    assert.equal(await page.inputValue('#since'), 'last tuesday');
    await assertAccessible(page, 'delivery log with a bad filter');

    // oldest first
    await page.goto(`${base}/manage/delivery`);
    await page.click('th a:has-text("Time")');
    await page.waitForURL(/order=asc/);
    assert.deepEqual(await page.locator('table.delivery-log tbody td:nth-child(5)').allInnerTexts(), ['mail', 'mail', 'backup', 'gw', 'flaky', 'gw']);
    assert.equal(await page.locator('th[aria-sort]').getAttribute('aria-sort'), 'ascending');

    // user, realm and serial filters
    await page.goto(`${base}/manage/delivery`);
    await page.fill('#user', 'alice');
    await page.fill('#realm', 'corp');
    await page.fill('#serial', 'LSSM0001');
    await page.click('form.filters button');
    await page.waitForURL(/serial=LSSM0001/);
    assert.equal(await rows.count(), 1);
    await page.fill('#user', 'bob');
    await page.click('form.filters button');
    await page.waitForURL(/user=bob/);
    assert.match(await page.locator('.empty').innerText(), /No message matches/);

    // paging with counts: 50 more test messages
    for (let i = 0; i < 50; i++) assert.equal((await t.admin('/system/testProvider', { type: 'sms', name: 'gw', to: '+4915123456789' })).json.result.value, true);
    await page.goto(`${base}/manage/delivery`);
    assert.equal(await page.locator('table.delivery-log caption').innerText(), 'Messages 1–50 of 56');
    await page.click('a[rel=next]');
    await page.waitForURL(/page=2/);
    assert.equal(await page.locator('table.delivery-log caption').innerText(), 'Messages 51–56 of 56');
    assert.equal(await page.locator('nav.pager span').innerText(), 'Page 2 of 2');
    await page.click('a[rel=prev]');
    await page.waitForURL(`${base}/manage/delivery`);
    await page.setViewportSize({ width: 390, height: 800 });
    await screenshot(page, 'manage-delivery-log-phone');
    await page.setViewportSize({ width: 1280, height: 800 });
    watch.assertClean('delivery log');
  });
});
